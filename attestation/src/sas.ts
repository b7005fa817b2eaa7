import { createHmac, timingSafeEqual } from 'node:crypto';
import { Errors } from '@opendps/model';

/**
 * SAS tokens (docs/device-wire.md §1). Field order varies by client and `sr` is encoded by some and
 * not by others, so fields are looked up by name and the HMAC is always computed over `sr` exactly as
 * sent (docs/device-wire.md, traps 1 and 2).
 */
export interface SasToken {
  /** `sr` exactly as it appeared on the wire. */
  resource: string;
  /** `sig`, URL-decoded. */
  signature: string;
  /** `se`, Unix seconds, as sent. */
  expiry: string;
  /** `skn`, when present. */
  keyName?: string;
}

const PREFIX = 'SharedAccessSignature ';

export function parseSasToken(token: unknown): SasToken {
  if (typeof token !== 'string' || !token.startsWith(PREFIX)) {
    throw Errors.malformedToken("A SAS token starts with 'SharedAccessSignature '.");
  }
  const fields = new Map<string, string>();
  for (const part of token.slice(PREFIX.length).trim().split('&')) {
    const at = part.indexOf('=');
    if (at > 0) fields.set(part.slice(0, at), part.slice(at + 1));
  }
  const resource = fields.get('sr');
  const signature = fields.get('sig');
  const expiry = fields.get('se');
  if (!resource || !signature || !expiry || !/^\d{1,12}$/.test(expiry)) {
    throw Errors.malformedToken('A SAS token needs sr, sig and a numeric se.');
  }
  const keyName = fields.get('skn');
  return { resource, signature: safeDecode(signature), expiry, ...(keyName ? { keyName: safeDecode(keyName) } : {}) };
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw Errors.malformedToken('A SAS token field is not URL-encoded correctly.');
  }
}

/** base64(HMAC-SHA256(base64decode(key), message)). */
export function hmacBase64(key: string, message: string): string {
  return createHmac('sha256', Buffer.from(key, 'base64')).update(message, 'utf8').digest('base64');
}

/** Constant-time check of the token's signature against one key. */
export function signatureMatches(token: SasToken, key: string): boolean {
  const expected = Buffer.from(hmacBase64(key, `${token.resource}\n${token.expiry}`), 'utf8');
  const given = Buffer.from(token.signature, 'utf8');
  return expected.length === given.length && timingSafeEqual(expected, given);
}

export interface VerifyOptions {
  /** The resource the token must be for, compared decoded and case-insensitively. */
  expectedResource: string;
  /** Keys to try in order (primary, secondary). Returns the index of the key that matched. */
  keys: readonly string[];
  /** Seconds of clock skew tolerated on expiry (default 300). */
  skewSeconds?: number;
  now?: Date;
  /** For service tokens: `sr` may be any path-segment prefix of the expected resource. */
  prefixMatch?: boolean;
}

/**
 * The verification recipe of docs/device-wire.md §1: signature first (constant time, over `sr` as
 * sent), then the decoded resource, then expiry. Returns the index of the key that signed it.
 */
export function verifySasToken(token: SasToken, options: VerifyOptions): number {
  const keyIndex = options.keys.findIndex((key) => signatureMatches(token, key));
  if (keyIndex < 0) throw Errors.invalidSignature();
  const resource = safeDecode(token.resource).toLowerCase();
  const expected = options.expectedResource.toLowerCase();
  const resourceMatches = options.prefixMatch
    ? expected === resource || expected.startsWith(resource.endsWith('/') ? resource : `${resource}/`)
    : resource === expected;
  if (!resourceMatches) throw Errors.wrongResource();
  const now = Math.floor((options.now ?? new Date()).getTime() / 1000);
  if (Number(token.expiry) + (options.skewSeconds ?? 300) <= now) throw Errors.tokenExpired();
  return keyIndex;
}

/** Builds a token the way the Node SDK does for DPS symmetric keys (raw `sr`, field order sr, sig, skn, se). */
export function createSasToken(options: {
  resource: string;
  key: string;
  keyName?: string;
  expiry: number;
  encodeResource?: boolean;
}): string {
  const sr = options.encodeResource ? encodeURIComponent(options.resource) : options.resource;
  const se = String(options.expiry);
  const sig = encodeURIComponent(hmacBase64(options.key, `${sr}\n${se}`));
  const skn = options.keyName ? `&skn=${encodeURIComponent(options.keyName)}` : '';
  return `${PREFIX}sr=${sr}&sig=${sig}${skn}&se=${se}`;
}

/** The group-derived device key: base64(HMAC-SHA256(base64decode(groupKey), registrationId)) (docs/service-rest.md §14). */
export function deriveDeviceKey(groupKey: string, registrationId: string): string {
  return hmacBase64(groupKey, registrationId);
}
