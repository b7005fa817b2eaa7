import { createHash } from 'node:crypto';
import { decodeTpmKey } from './encoding';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

/** RFC 4648 base32, lower case, without padding. */
export function base32Lower(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = ((buffer << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(buffer >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(buffer << (5 - bits)) & 31];
  return out;
}

/**
 * The default registration id of a TPM device (docs/service-rest.md §14): lowercase unpadded base32 of
 * SHA-256 over the EK TPM2B_PUBLIC, size prefix included; 52 characters. The EK must parse.
 */
export function registrationIdFromEndorsementKey(endorsementKey: string): string {
  const { bytes } = decodeTpmKey(endorsementKey, 'The endorsement key');
  return base32Lower(createHash('sha256').update(bytes).digest());
}
