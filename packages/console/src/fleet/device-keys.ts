/** Device keys and tokens (docs/device-wire.md §1), signed with WebCrypto through ../sas. */
import { hmacBase64, sasToken } from '../sas';

/** A group's device key: base64(HMAC-SHA256(groupKey, registrationId)), as the SDK samples derive it. */
export function deriveDeviceKey(groupKey: string, registrationId: string): Promise<string> {
  return hmacBase64(groupKey, registrationId);
}

/** The DPS token: `sr` not URL-encoded and signed as sent, policy `registration` (Trap 1). */
export function dpsToken(idScope: string, registrationId: string, key: string): Promise<string> {
  return sasToken({ resource: `${idScope}/registrations/${registrationId}`, key, keyName: 'registration' });
}

/** The hub device token: `sr` URL-encoded, no `skn`. */
export function hubToken(hubHost: string, deviceId: string, key: string): Promise<string> {
  return sasToken({ resource: encodeURIComponent(`${hubHost}/devices/${deviceId}`), key });
}

/** A plausible symmetric key (base64 of 16 to 64 bytes), checked before any device starts. */
export function isKey(text: string): boolean {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text) || text.length % 4 !== 0) return false;
  const bytes = (text.length / 4) * 3 - (text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0);
  return bytes >= 16 && bytes <= 64;
}
