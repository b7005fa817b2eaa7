/**
 * A TPM endorsement key for enrollments that never meet a TPM: a TPM2B_PUBLIC shaped like a real
 * RSA-2048 EK (the TCG default EK template), size prefix included, base64 (docs/service-rest.md §3).
 */
import { generateKeyPairSync } from 'node:crypto';
import { tpm } from '@opendps/attestation';

/** The TCG default EK template's authPolicy (PolicySecret(TPM_RH_ENDORSEMENT)). */
const EK_POLICY = Buffer.from('837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa', 'hex');

export function endorsementKey(): string {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = publicKey.export({ format: 'jwk' });
  const { TPM_ALG, TPMA_OBJECT } = tpm;
  return tpm
    .marshalTpm2bPublic({
      type: TPM_ALG.RSA,
      nameAlg: TPM_ALG.SHA256,
      objectAttributes:
        TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.sensitiveDataOrigin | TPMA_OBJECT.adminWithPolicy |
        TPMA_OBJECT.restricted | TPMA_OBJECT.decrypt,
      authPolicy: EK_POLICY,
      symmetric: { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB },
      scheme: { algorithm: TPM_ALG.NULL },
      keyBits: 2048,
      exponent: 0,
      modulus: Buffer.from(jwk.n as string, 'base64url'),
    })
    .toString('base64');
}
