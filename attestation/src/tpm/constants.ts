/** TPM 2.0 Library, Part 2 (Structures): the algorithm ids and attribute bits OpenDPS meets. */
export const TPM_ALG = {
  RSA: 0x0001,
  SHA1: 0x0004,
  HMAC: 0x0005,
  AES: 0x0006,
  KEYEDHASH: 0x0008,
  XOR: 0x000a,
  SHA256: 0x000b,
  SHA384: 0x000c,
  SHA512: 0x000d,
  NULL: 0x0010,
  RSAES: 0x0015,
  ECDAA: 0x001a,
  ECC: 0x0023,
  SYMCIPHER: 0x0025,
  CFB: 0x0043,
} as const;

/** TPMA_OBJECT bits (Part 2, 8.3). */
export const TPMA_OBJECT = {
  fixedTPM: 0x00000002,
  stClear: 0x00000004,
  fixedParent: 0x00000010,
  sensitiveDataOrigin: 0x00000020,
  userWithAuth: 0x00000040,
  adminWithPolicy: 0x00000080,
  noDA: 0x00000400,
  encryptedDuplication: 0x00000800,
  restricted: 0x00010000,
  decrypt: 0x00020000,
  sign: 0x00040000,
} as const;

/** Command codes that appear in policy digests. */
export const TPM_CC = {
  Duplicate: 0x0000014b,
  PolicyCommandCode: 0x0000016c,
} as const;

/** Node hash names and digest sizes of the TPM hash algorithms we can compute. */
const HASHES: Readonly<Record<number, { name: string; size: number }>> = {
  [TPM_ALG.SHA1]: { name: 'sha1', size: 20 },
  [TPM_ALG.SHA256]: { name: 'sha256', size: 32 },
  [TPM_ALG.SHA384]: { name: 'sha384', size: 48 },
  [TPM_ALG.SHA512]: { name: 'sha512', size: 64 },
};

export function hashOf(alg: number): { name: string; size: number } | undefined {
  return HASHES[alg];
}

/** Largest buffers of an object's public area (Part 2 sizes for a 4096-bit RSA / P-521 TPM). */
export const LIMITS = {
  digest: 64,
  rsaModulus: 512,
  eccCoordinate: 66,
  /** TPM2B_PUBLIC on the wire, size prefix included; a 4096-bit RSA key with SHA-512 policy needs ~600. */
  publicArea: 1024,
  /** MAX_SYM_DATA: a KEYEDHASH key's sensitive data. */
  symData: 128,
} as const;
