import { Errors, type DpsError } from '@opendps/model';
import { LIMITS } from './constants';
import { parseTpm2bPublic, type ParsedPublic } from './public';

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strict base64 of at most `maxBytes` bytes; anything else is a coded error (400011 by default) naming `what`. */
export function decodeBase64(
  value: unknown,
  what: string,
  maxBytes: number,
  fail: (detail: string) => DpsError = Errors.invalidTpmKey,
): Buffer {
  if (typeof value !== 'string' || value.length === 0) throw fail(`${what} must be a base64 string.`);
  if (value.length > Math.ceil(maxBytes / 3) * 4) throw fail(`${what} is longer than ${maxBytes} bytes.`);
  if (!BASE64.test(value)) throw fail(`${what} is not base64.`);
  return Buffer.from(value, 'base64');
}

/** A base64 TPM2B_PUBLIC as the SDKs send it (`tpm.endorsementKey`, `tpm.storageRootKey`). */
export function decodeTpmKey(value: unknown, what: string): ParsedPublic & { bytes: Buffer } {
  const bytes = decodeBase64(value, what, LIMITS.publicArea);
  return { ...parseTpm2bPublic(bytes, what), bytes };
}
