import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { Errors } from '@opendps/model';
import { hashOf, LIMITS, TPM_ALG } from './constants';
import { TpmReader, TpmWriter } from './marshal';

/** TPMT_SYM_DEF_OBJECT; `null` for TPM_ALG_NULL. */
export type SymmetricDefinition = { algorithm: number; keyBits: number; mode: number } | null;

/** A scheme (TPMT_RSA_SCHEME, TPMT_ECC_SCHEME, TPMT_KEYEDHASH_SCHEME, TPMT_KDF_SCHEME). */
export interface Scheme {
  algorithm: number;
  hashAlg?: number;
  /** ECDAA's count. */
  count?: number;
  /** XOR's KDF. */
  kdf?: number;
}

interface PublicCommon {
  nameAlg: number;
  objectAttributes: number;
  authPolicy: Buffer;
}

export interface RsaPublic extends PublicCommon {
  type: typeof TPM_ALG.RSA;
  symmetric: SymmetricDefinition;
  scheme: Scheme;
  keyBits: number;
  /** As marshalled: 0 means 65537. */
  exponent: number;
  modulus: Buffer;
}

export interface EccPublic extends PublicCommon {
  type: typeof TPM_ALG.ECC;
  symmetric: SymmetricDefinition;
  scheme: Scheme;
  curveId: number;
  kdf: Scheme;
  x: Buffer;
  y: Buffer;
}

export interface KeyedHashPublic extends PublicCommon {
  type: typeof TPM_ALG.KEYEDHASH;
  scheme: Scheme;
  unique: Buffer;
}

export interface SymCipherPublic extends PublicCommon {
  type: typeof TPM_ALG.SYMCIPHER;
  symmetric: SymmetricDefinition;
  unique: Buffer;
}

/** TPMT_PUBLIC (Part 2, 12.2.4) of the object types a TPM can hold. */
export type TpmPublic = RsaPublic | EccPublic | KeyedHashPublic | SymCipherPublic;

/** A parsed TPM2B_PUBLIC with the exact TPMT_PUBLIC bytes it came from (its Name hashes those). */
export interface ParsedPublic {
  public: TpmPublic;
  /** TPMT_PUBLIC as received (the TPM2B_PUBLIC without its size prefix). */
  marshalled: Buffer;
}

/**
 * Parses a TPM2B_PUBLIC (size prefix included, as the SDKs send EK and SRK). The size must cover
 * exactly one TPMT_PUBLIC: truncated, oversized or trailing bytes are a 400011.
 */
export function parseTpm2bPublic(bytes: Buffer, what = 'The TPM key'): ParsedPublic {
  if (bytes.length > LIMITS.publicArea) {
    throw Errors.invalidTpmKey(`${what} is ${bytes.length} bytes, more than the ${LIMITS.publicArea} allowed.`);
  }
  const outer = new TpmReader(bytes, what);
  const size = outer.u16('TPM2B_PUBLIC size');
  if (size !== outer.remaining) {
    throw Errors.invalidTpmKey(`${what} declares ${size} bytes of TPMT_PUBLIC but carries ${outer.remaining}.`);
  }
  const marshalled = outer.take(size, 'TPMT_PUBLIC');
  return { public: parseTpmtPublic(marshalled, what), marshalled };
}

/** Parses a TPMT_PUBLIC that must fill `bytes` exactly. */
export function parseTpmtPublic(bytes: Buffer, what = 'The TPM key'): TpmPublic {
  const r = new TpmReader(bytes, what);
  const type = r.u16('type');
  const nameAlg = r.u16('nameAlg');
  const objectAttributes = r.u32('objectAttributes');
  const authPolicy = r.sized('authPolicy', LIMITS.digest);
  const common = { nameAlg, objectAttributes, authPolicy };
  let result: TpmPublic;
  switch (type) {
    case TPM_ALG.RSA: {
      const symmetric = readSymmetric(r);
      const scheme = readScheme(r, 'scheme');
      const keyBits = r.u16('keyBits');
      const exponent = r.u32('exponent');
      const modulus = r.sized('unique (modulus)', LIMITS.rsaModulus);
      result = { type, ...common, symmetric, scheme, keyBits, exponent, modulus };
      break;
    }
    case TPM_ALG.ECC: {
      const symmetric = readSymmetric(r);
      const scheme = readScheme(r, 'scheme');
      const curveId = r.u16('curveID');
      const kdf = readScheme(r, 'kdf');
      const x = r.sized('unique.x', LIMITS.eccCoordinate);
      const y = r.sized('unique.y', LIMITS.eccCoordinate);
      result = { type, ...common, symmetric, scheme, curveId, kdf, x, y };
      break;
    }
    case TPM_ALG.KEYEDHASH: {
      const scheme = readScheme(r, 'scheme');
      const unique = r.sized('unique', LIMITS.digest);
      result = { type, ...common, scheme, unique };
      break;
    }
    case TPM_ALG.SYMCIPHER: {
      const symmetric = readSymmetric(r);
      const unique = r.sized('unique', LIMITS.digest);
      result = { type, ...common, symmetric, unique };
      break;
    }
    default:
      throw r.error(`has unknown object type 0x${hex16(type)}`);
  }
  r.end();
  return result;
}

function readSymmetric(r: TpmReader): SymmetricDefinition {
  const algorithm = r.u16('symmetric.algorithm');
  if (algorithm === TPM_ALG.NULL) return null;
  return { algorithm, keyBits: r.u16('symmetric.keyBits'), mode: r.u16('symmetric.mode') };
}

/** TPMU_ASYM_SCHEME / TPMU_SCHEME_KEYEDHASH / TPMU_KDF_SCHEME: NULL and RSAES carry nothing, ECDAA a count, XOR a KDF. */
function readScheme(r: TpmReader, field: string): Scheme {
  const algorithm = r.u16(`${field}.algorithm`);
  if (algorithm === TPM_ALG.NULL || algorithm === TPM_ALG.RSAES) return { algorithm };
  const hashAlg = r.u16(`${field}.hashAlg`);
  if (algorithm === TPM_ALG.ECDAA) return { algorithm, hashAlg, count: r.u16(`${field}.count`) };
  if (algorithm === TPM_ALG.XOR) return { algorithm, hashAlg, kdf: r.u16(`${field}.kdf`) };
  return { algorithm, hashAlg };
}

/** TPMT_PUBLIC bytes of `pub` (the inverse of parseTpmtPublic). */
export function marshalTpmtPublic(pub: TpmPublic): Buffer {
  const w = new TpmWriter().u16(pub.type).u16(pub.nameAlg).u32(pub.objectAttributes).tpm2b(pub.authPolicy);
  switch (pub.type) {
    case TPM_ALG.RSA:
      writeSymmetric(w, pub.symmetric);
      writeScheme(w, pub.scheme);
      w.u16(pub.keyBits).u32(pub.exponent).tpm2b(pub.modulus);
      break;
    case TPM_ALG.ECC:
      writeSymmetric(w, pub.symmetric);
      writeScheme(w, pub.scheme);
      w.u16(pub.curveId);
      writeScheme(w, pub.kdf);
      w.tpm2b(pub.x).tpm2b(pub.y);
      break;
    case TPM_ALG.KEYEDHASH:
      writeScheme(w, pub.scheme);
      w.tpm2b(pub.unique);
      break;
    case TPM_ALG.SYMCIPHER:
      writeSymmetric(w, pub.symmetric);
      w.tpm2b(pub.unique);
      break;
  }
  return w.toBuffer();
}

/** TPM2B_PUBLIC bytes of `pub`, size prefix included. */
export function marshalTpm2bPublic(pub: TpmPublic): Buffer {
  return new TpmWriter().tpm2b(marshalTpmtPublic(pub)).toBuffer();
}

function writeSymmetric(w: TpmWriter, symmetric: SymmetricDefinition): void {
  if (!symmetric) w.u16(TPM_ALG.NULL);
  else w.u16(symmetric.algorithm).u16(symmetric.keyBits).u16(symmetric.mode);
}

function writeScheme(w: TpmWriter, scheme: Scheme): void {
  w.u16(scheme.algorithm);
  if (scheme.algorithm === TPM_ALG.NULL || scheme.algorithm === TPM_ALG.RSAES) return;
  w.u16(scheme.hashAlg ?? TPM_ALG.NULL);
  if (scheme.algorithm === TPM_ALG.ECDAA) w.u16(scheme.count ?? 0);
  if (scheme.algorithm === TPM_ALG.XOR) w.u16(scheme.kdf ?? TPM_ALG.NULL);
}

/**
 * The object's Name (Part 1, 16): u16 nameAlg ‖ H_nameAlg(TPMT_PUBLIC). Equals `tpm2_readpublic -n`
 * (docs/tpm.md §4.2).
 */
export function objectName(marshalledPublic: Buffer, nameAlg: number): Buffer {
  const hash = hashOf(nameAlg);
  if (!hash) throw Errors.invalidTpmKey(`The TPM key's nameAlg 0x${hex16(nameAlg)} is not supported.`);
  const name = Buffer.alloc(2);
  name.writeUInt16BE(nameAlg);
  return Buffer.concat([name, createHash(hash.name).update(marshalledPublic).digest()]);
}

/** The Name of a parsed TPM2B_PUBLIC. */
export function nameOf(parsed: ParsedPublic): Buffer {
  return objectName(parsed.marshalled, parsed.public.nameAlg);
}

/** The RSA public key of an RSA object, for node:crypto (exponent 0 means 65537, Part 2 12.2.3.5). */
export function rsaPublicKey(pub: RsaPublic): KeyObject {
  const exponent = pub.exponent === 0 ? 65537 : pub.exponent;
  const e = Buffer.alloc(4);
  e.writeUInt32BE(exponent);
  const firstNonZero = e.findIndex((b) => b !== 0);
  try {
    return createPublicKey({
      key: { kty: 'RSA', n: stripLeadingZeros(pub.modulus).toString('base64url'), e: e.subarray(firstNonZero).toString('base64url') },
      format: 'jwk',
    });
  } catch {
    throw Errors.invalidTpmKey('The RSA public key of the TPM key is not usable.');
  }
}

function stripLeadingZeros(value: Buffer): Buffer {
  let at = 0;
  while (at < value.length - 1 && value[at] === 0) at++;
  return value.subarray(at);
}

export function hex16(value: number): string {
  return value.toString(16).padStart(4, '0');
}
