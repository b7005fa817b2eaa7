/** SAS tokens signed with WebCrypto (docs/service-rest.md §8 for the service API, docs/device-wire.md §1 for devices). */

const encoder = new TextEncoder();

export function base64ToBytes(text: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

export function bytesToBase64(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** base64(HMAC-SHA256(base64decode(key), text)): also the group-derived device key. */
export async function hmacBase64(key: string, text: string): Promise<string> {
  const imported = await crypto.subtle.importKey('raw', base64ToBytes(key), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return bytesToBase64(new Uint8Array(await crypto.subtle.sign('HMAC', imported, encoder.encode(text))));
}

export interface TokenOptions {
  /** Signed as given: the service API and DPS devices sign the raw resource, hub devices the URL-encoded one. */
  resource: string;
  key: string;
  keyName?: string;
  lifetimeSeconds?: number;
  now?: number;
}

export async function sasToken(options: TokenOptions): Promise<string> {
  const expiry = Math.floor((options.now ?? Date.now()) / 1000) + (options.lifetimeSeconds ?? 3600);
  const sig = encodeURIComponent(await hmacBase64(options.key, `${options.resource}\n${expiry}`));
  const skn = options.keyName ? `&skn=${encodeURIComponent(options.keyName)}` : '';
  return `SharedAccessSignature sr=${options.resource}&sig=${sig}${skn}&se=${expiry}`;
}

/** A fresh 32-byte symmetric key, as the service would generate one. */
export function generateKey(): string {
  return bytesToBase64(crypto.getRandomValues(new Uint8Array(32)));
}
