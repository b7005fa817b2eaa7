import { createHash, randomBytes } from 'node:crypto';
import { aesCfbEncrypt, hmac } from './cipher';
import { kdfa } from './kdf';
import { TpmWriter, tpm2b } from './marshal';
import { oaepEncrypt } from './oaep';
import type { StorageKey } from './storageKey';

/** TPM2_Duplicate's output for a new parent: blob fields 3 and 4. */
export interface Duplicated {
  /** TPM2B_PRIVATE: u16 size ‖ TPM2B_DIGEST outerHMAC ‖ encOuter. */
  duplicate: Buffer;
  /** TPM2B_ENCRYPTED_SECRET: the outer seed, RSA-OAEP encrypted to the parent with label "DUPLICATE\0". */
  inSymSeed: Buffer;
}

export interface DuplicateRandom {
  /** The outer wrapper's seed (the parent's digest size). */
  seed?: Buffer;
  oaepSeed?: Buffer;
}

/**
 * Duplicates an object to `parent` with both wrappers (Part 1, 23.3; docs/tpm.md §4.5), as
 * TPM2_Import(encryptionKey = innerKey, symmetricAlg = AES-CFB) expects:
 * inner: AES-CFB(innerKey, TPM2B(H(sensitive ‖ name)) ‖ sensitive), hash = the object's nameAlg (SHA-256);
 * outer: AES-CFB(KDFa(seed, "STORAGE", name)) and HMAC(KDFa(seed, "INTEGRITY"), encOuter ‖ name).
 */
export function duplicate(
  parent: StorageKey,
  object: { name: Buffer; sensitive: Buffer },
  innerKey: Buffer,
  random: DuplicateRandom = {},
): Duplicated {
  const { hash } = parent;
  const innerIntegrity = createHash('sha256').update(object.sensitive).update(object.name).digest();
  const encInner = aesCfbEncrypt(innerKey, Buffer.concat([tpm2b(innerIntegrity), object.sensitive]));

  const seed = random.seed ?? randomBytes(hash.size);
  if (seed.length !== hash.size) throw new RangeError(`The seed must be ${hash.size} bytes.`);
  const inSymSeed = tpm2b(oaepEncrypt(parent.rsa, hash, 'DUPLICATE', seed, random.oaepSeed));
  const symKey = kdfa(hash.name, seed, 'STORAGE', object.name, Buffer.alloc(0), parent.symmetricKeyBits);
  const encOuter = aesCfbEncrypt(symKey, encInner);
  const hmacKey = kdfa(hash.name, seed, 'INTEGRITY', Buffer.alloc(0), Buffer.alloc(0), hash.size * 8);
  const outerHmac = hmac(hash.name, hmacKey, encOuter, object.name);
  const duplicated = new TpmWriter().sized((w) => w.tpm2b(outerHmac).bytes(encOuter)).toBuffer();
  return { duplicate: duplicated, inSymSeed };
}
