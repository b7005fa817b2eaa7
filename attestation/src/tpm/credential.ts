import { randomBytes } from 'node:crypto';
import { aesCfbEncrypt, hmac } from './cipher';
import { kdfa } from './kdf';
import { TpmWriter, tpm2b } from './marshal';
import { oaepEncrypt } from './oaep';
import type { StorageKey } from './storageKey';

/** TPM2_MakeCredential's output: blob fields 1 and 2. */
export interface MadeCredential {
  /** TPM2B_ID_OBJECT: u16 size ‖ TPM2B_DIGEST integrity ‖ encIdentity. */
  credentialBlob: Buffer;
  /** TPM2B_ENCRYPTED_SECRET: the seed, RSA-OAEP encrypted to the protector with label "IDENTITY\0". */
  encryptedSecret: Buffer;
}

export interface CredentialRandom {
  /** The seed (the protector's digest size). */
  seed?: Buffer;
  /** The OAEP padding seed (the protector's digest size). */
  oaepSeed?: Buffer;
}

/**
 * TPM2_MakeCredential in software (Part 1, 24; Part 3, 12.6; docs/tpm.md §4.6): protects
 * `credential` so that only the TPM holding the protector (the EK) and an object of Name `objectName`
 * (the SRK) can recover it with TPM2_ActivateCredential.
 */
export function makeCredential(
  protector: StorageKey,
  objectName: Buffer,
  credential: Buffer,
  random: CredentialRandom = {},
): MadeCredential {
  const { hash } = protector;
  if (credential.length > hash.size) throw new RangeError(`A credential is at most ${hash.size} bytes.`);
  const seed = random.seed ?? randomBytes(hash.size);
  if (seed.length !== hash.size) throw new RangeError(`The seed must be ${hash.size} bytes.`);
  const encryptedSecret = tpm2b(oaepEncrypt(protector.rsa, hash, 'IDENTITY', seed, random.oaepSeed));
  const symKey = kdfa(hash.name, seed, 'STORAGE', objectName, Buffer.alloc(0), protector.symmetricKeyBits);
  const encIdentity = aesCfbEncrypt(symKey, tpm2b(credential));
  const hmacKey = kdfa(hash.name, seed, 'INTEGRITY', Buffer.alloc(0), Buffer.alloc(0), hash.size * 8);
  const integrity = hmac(hash.name, hmacKey, encIdentity, objectName);
  const credentialBlob = new TpmWriter().sized((w) => w.tpm2b(integrity).bytes(encIdentity)).toBuffer();
  return { credentialBlob, encryptedSecret };
}
