export { TPM_ALG, TPMA_OBJECT, TPM_CC } from './constants';
export { TpmReader, TpmWriter, tpm2b } from './marshal';
export {
  parseTpm2bPublic,
  parseTpmtPublic,
  marshalTpmtPublic,
  marshalTpm2bPublic,
  objectName,
  nameOf,
  rsaPublicKey,
  type TpmPublic,
  type RsaPublic,
  type EccPublic,
  type KeyedHashPublic,
  type SymCipherPublic,
  type ParsedPublic,
  type Scheme,
  type SymmetricDefinition,
} from './public';
export { kdfa } from './kdf';
export { aesCfbEncrypt, aesCfbDecrypt } from './cipher';
export { oaepEncrypt } from './oaep';
export { storageKey, type StorageKey } from './storageKey';
export { makeCredential, type MadeCredential, type CredentialRandom } from './credential';
export { identityKey, IDENTITY_KEY_POLICY, IDENTITY_KEY_ATTRIBUTES, type IdentityKey } from './identityKey';
export { duplicate, type Duplicated, type DuplicateRandom } from './duplicate';
export {
  buildActivationBlob,
  parseActivationBlob,
  type ActivationRandom,
  type ActivationBlobFields,
  type ActivationBlobOptions,
} from './activation';
export { registrationIdFromEndorsementKey, base32Lower } from './registrationId';
export { decodeTpmKey } from './encoding';
export {
  createTpmChallenge,
  wrapTpmDeviceKey,
  type TpmDeviceKeys,
  type TpmChallenge,
  type TpmChallengeRandom,
  type TpmDeviceKeyBlob,
} from './challenge';
