export * from './types';
export * from './hubs';
export * from './service';
export { assign, hubIdentity } from './assign';
export type { AttestedDevice, Attestation } from './attest';
export type { OperationRecord } from './operations';
export { TpmChallengeError, isTpmChallengeError, tpmChallenges, TPM_CHALLENGES, TPM_KEY_NAME, type TpmChallengeRecord } from './tpm';
export { createRegistrationThrottle, effectiveQuotas, DEFAULT_QUOTAS, MAX_QUOTA, type RegistrationThrottle, type ThrottledRequest } from './throttle';
