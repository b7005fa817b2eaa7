import { randomBytes } from 'node:crypto';
import { Errors } from '@opendps/model';
import { aesCfbEncrypt } from './cipher';
import { makeCredential } from './credential';
import { duplicate } from './duplicate';
import { identityKey } from './identityKey';
import { TpmReader, tpm2b } from './marshal';
import type { StorageKey } from './storageKey';

/**
 * Every random value of one activation blob. Each is drawn from node:crypto unless given, so that
 * golden vectors can pin a whole blob byte for byte.
 */
export interface ActivationRandom {
  /** The ID key's seedValue (32 bytes). */
  seedValue?: Buffer;
  /** The inner wrap key, which is also the credential (16 bytes). */
  innerKey?: Buffer;
  /** MakeCredential's seed and OAEP seed (32 bytes each). */
  credentialSeed?: Buffer;
  credentialOaepSeed?: Buffer;
  /** Duplicate's outer seed and OAEP seed (32 bytes each). */
  duplicateSeed?: Buffer;
  duplicateOaepSeed?: Buffer;
}

/** The six fields of the blob, each a TPM2B with its size prefix (docs/tpm.md §3). */
export interface ActivationBlobFields {
  /** 1. TPM2B_ID_OBJECT. */
  credentialBlob: Buffer;
  /** 2. TPM2B_ENCRYPTED_SECRET (to the EK). */
  encryptedSecret: Buffer;
  /** 3. TPM2B_PRIVATE: the ID key duplicated to the SRK. */
  duplicate: Buffer;
  /** 4. TPM2B_ENCRYPTED_SECRET (to the SRK). */
  inSymSeed: Buffer;
  /** 5. TPM2B_PUBLIC of the ID key. */
  identityKeyPublic: Buffer;
  /** 6. TPM2B_DATA: AES-CFB(innerKey, uri), possibly empty but always present. */
  encryptedUri: Buffer;
}

export interface ActivationBlobOptions {
  endorsementKey: StorageKey;
  storageRootKey: StorageKey;
  /** The HMAC key the device will hold (K1 for the challenge, the hub key K2 at assignment). */
  hmacKey: Buffer;
  /** Encrypted into field 6; devices ignore it. */
  uri?: string;
  random?: ActivationRandom;
}

/**
 * The `authenticationKey` blob of DrsServer.GetActivationBlob2, parsed the same way by Node,
 * the C SDK and aziot-tpmd: the inner wrap key as a credential bound to Name(SRK) and encrypted to
 * the EK, then the ID key duplicated to the SRK under that inner key.
 */
export function buildActivationBlob(options: ActivationBlobOptions): Buffer {
  const { endorsementKey, storageRootKey, hmacKey, uri = '', random = {} } = options;
  // The C SDK and aziot-tpmd hard-code AES-128-CFB for Import: the credential must be 16 bytes.
  const innerKey = random.innerKey ?? randomBytes(16);
  if (innerKey.length !== 16) throw new RangeError('The inner wrap key is 16 bytes.');
  const idKey = identityKey(hmacKey, random.seedValue);
  const credential = makeCredential(endorsementKey, storageRootKey.name, innerKey, {
    ...(random.credentialSeed ? { seed: random.credentialSeed } : {}),
    ...(random.credentialOaepSeed ? { oaepSeed: random.credentialOaepSeed } : {}),
  });
  const duplicated = duplicate(storageRootKey, idKey, innerKey, {
    ...(random.duplicateSeed ? { seed: random.duplicateSeed } : {}),
    ...(random.duplicateOaepSeed ? { oaepSeed: random.duplicateOaepSeed } : {}),
  });
  const encryptedUri = tpm2b(uri ? aesCfbEncrypt(innerKey, Buffer.from(uri, 'utf8')) : Buffer.alloc(0));
  return Buffer.concat([
    credential.credentialBlob,
    credential.encryptedSecret,
    duplicated.duplicate,
    duplicated.inSymSeed,
    idKey.tpm2bPublic,
    encryptedUri,
  ]);
}

/**
 * Splits a blob into its six TPM2B fields, as a device does before ActivateCredential and Import.
 * Trailing bytes are refused (Node only warns; a blob of ours never has them).
 */
export function parseActivationBlob(blob: Buffer): ActivationBlobFields {
  const r = new TpmReader(blob, 'The activation blob', Errors.invalidTpmKey);
  const field = (name: string) => {
    const start = r.position;
    r.sized(name, 0xffff);
    return Buffer.from(r.slice(start, r.position));
  };
  const fields: ActivationBlobFields = {
    credentialBlob: field('credentialBlob'),
    encryptedSecret: field('encSecret'),
    duplicate: field('idKeyDupBlob'),
    inSymSeed: field('encWrapKey'),
    identityKeyPublic: field('idKeyPub'),
    encryptedUri: field('encUriData'),
  };
  r.end();
  return fields;
}
