export * from './types';
export * from './hubs';
export * from './service';
export { assign, hubIdentity } from './assign';
export type { AttestedDevice, Attestation } from './attest';
export { newOperationId, type OperationFinished, type OperationInFlight, type OperationRecord } from './operations';
export {
  TpmChallengeError,
  isTpmChallengeError,
  settleTpmHubKey,
  tpmChallenges,
  TPM_CHALLENGES,
  TPM_HUB_KEYS,
  TPM_KEY_NAME,
  type TpmChallengeRecord,
  type TpmHubKeyRecord,
  type TpmHubKeys,
} from './tpm';
export { createRegistrationThrottle, effectiveQuotas, DEFAULT_QUOTAS, MAX_QUOTA, type RegistrationThrottle, type ThrottledRequest } from './throttle';
export { because, markTraced, refusalLogLevel, refusalReason, type RefusalReason } from './refusal';
export {
  registrationTraces,
  REGISTRATION_TRACES,
  type AssignmentDecision,
  type AttestationMechanism,
  type RegistrationMetrics,
  type RegistrationTrace,
} from './trace';
export {
  checkApiVersion,
  checkSameRegistration,
  decodeRegisterBody,
  forceRegistrationOf,
  registrationRequest,
  type RegisterBody,
  type RegisterEnvelope,
} from './device-request';
