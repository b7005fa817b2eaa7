import { createHash, randomBytes } from 'node:crypto';
import { LIMITS, TPM_ALG, TPM_CC, TPMA_OBJECT } from './constants';
import { TpmWriter } from './marshal';
import { marshalTpmtPublic, objectName, type KeyedHashPublic } from './public';

/**
 * PolicyCommandCode(TPM_CC_Duplicate) from an empty policy: the ID key's authPolicy, as DrsServer
 * builds it (docs/tpm.md §4.4): SHA-256(0^32 ‖ u32 0x16C ‖ u32 0x14B).
 */
export const IDENTITY_KEY_POLICY: Buffer = (() => {
  const cc = Buffer.alloc(8);
  cc.writeUInt32BE(TPM_CC.PolicyCommandCode, 0);
  cc.writeUInt32BE(TPM_CC.Duplicate, 4);
  return createHash('sha256').update(Buffer.alloc(32)).update(cc).digest();
})();

/** sign | userWithAuth | noDA: 0x00040440. */
export const IDENTITY_KEY_ATTRIBUTES = TPMA_OBJECT.sign | TPMA_OBJECT.userWithAuth | TPMA_OBJECT.noDA;

/** The HMAC-SHA256 KEYEDHASH key the device imports and signs SAS tokens with. */
export interface IdentityKey {
  public: KeyedHashPublic;
  /** TPMT_PUBLIC. */
  marshalledPublic: Buffer;
  /** TPM2B_PUBLIC (blob field 5). */
  tpm2bPublic: Buffer;
  name: Buffer;
  /** TPM2B_SENSITIVE: u16 size ‖ u16 KEYEDHASH ‖ TPM2B authValue (empty) ‖ TPM2B seedValue ‖ TPM2B key. */
  sensitive: Buffer;
}

/**
 * Builds the ID key around `hmacKey`. unique = SHA-256(seedValue ‖ key) binds public to sensitive
 * area; TPM2_Import checks it (TPM_RC_BINDING otherwise).
 */
export function identityKey(hmacKey: Buffer, seedValue: Buffer = randomBytes(32)): IdentityKey {
  if (hmacKey.length === 0 || hmacKey.length > LIMITS.symData) throw new RangeError('An HMAC key is 1 to 128 bytes.');
  if (seedValue.length !== 32) throw new RangeError('The seedValue of a SHA-256 object is 32 bytes.');
  const pub: KeyedHashPublic = {
    type: TPM_ALG.KEYEDHASH,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: IDENTITY_KEY_ATTRIBUTES,
    authPolicy: IDENTITY_KEY_POLICY,
    scheme: { algorithm: TPM_ALG.HMAC, hashAlg: TPM_ALG.SHA256 },
    unique: createHash('sha256').update(seedValue).update(hmacKey).digest(),
  };
  const marshalledPublic = marshalTpmtPublic(pub);
  const sensitive = new TpmWriter()
    .sized((w) => w.u16(TPM_ALG.KEYEDHASH).tpm2b(Buffer.alloc(0)).tpm2b(seedValue).tpm2b(hmacKey))
    .toBuffer();
  return {
    public: pub,
    marshalledPublic,
    tpm2bPublic: new TpmWriter().tpm2b(marshalledPublic).toBuffer(),
    name: objectName(marshalledPublic, pub.nameAlg),
    sensitive,
  };
}
