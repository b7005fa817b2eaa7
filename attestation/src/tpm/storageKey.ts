import { Errors } from '@opendps/model';
import { hashOf, TPM_ALG, TPMA_OBJECT } from './constants';
import { hex16, nameOf, parseTpm2bPublic, type ParsedPublic, type RsaPublic } from './public';

/**
 * An EK or SRK as a protector: the key a seed is encrypted to, whose nameAlg drives KDFa and the
 * HMAC and whose symmetric definition sizes the wrapping key (Part 1, 24 and 23.3.2).
 */
export interface StorageKey {
  parsed: ParsedPublic;
  rsa: RsaPublic;
  name: Buffer;
  hash: { name: string; size: number };
  /** The key's AES key size in bits (its symmetric.keyBits). */
  symmetricKeyBits: number;
}

const REQUIRED = TPMA_OBJECT.restricted | TPMA_OBJECT.decrypt;

/**
 * Parses an EK or SRK TPM2B_PUBLIC and accepts only what the device SDKs create (docs/tpm.md §1
 * and §4.1): RSA-2048, nameAlg SHA-256, AES-128-CFB, scheme NULL, a restricted decryption key.
 * Real DPS documents no other types and the C SDK hard-codes these.
 */
export function storageKey(bytes: Buffer, what: string): StorageKey {
  const parsed = parseTpm2bPublic(bytes, what);
  const key = parsed.public;
  const refuse = (detail: string) => Errors.invalidTpmKey(`${what} ${detail}; only RSA-2048 / SHA-256 / AES-128-CFB storage keys are supported.`);
  if (key.type !== TPM_ALG.RSA) throw refuse(`has object type 0x${hex16(key.type)}`);
  if (key.keyBits !== 2048 || key.modulus.length !== 256) throw refuse(`is RSA-${key.keyBits} with a ${key.modulus.length}-byte modulus`);
  if (key.nameAlg !== TPM_ALG.SHA256) throw refuse(`has nameAlg 0x${hex16(key.nameAlg)}`);
  const sym = key.symmetric;
  if (!sym || sym.algorithm !== TPM_ALG.AES || sym.keyBits !== 128 || sym.mode !== TPM_ALG.CFB) throw refuse('has another symmetric definition');
  if (key.scheme.algorithm !== TPM_ALG.NULL) throw refuse('has a scheme');
  if ((key.objectAttributes & REQUIRED) !== REQUIRED || key.objectAttributes & TPMA_OBJECT.sign) {
    throw refuse('is not a restricted decryption key');
  }
  if (key.modulus[0] === 0) throw refuse('has a modulus shorter than 2048 bits');
  if (key.exponent !== 0 && (key.exponent < 3 || key.exponent % 2 === 0)) throw refuse(`has the invalid RSA exponent ${key.exponent}`);
  return { parsed, rsa: key, name: nameOf(parsed), hash: hashOf(key.nameAlg)!, symmetricKeyBits: sym.keyBits };
}
