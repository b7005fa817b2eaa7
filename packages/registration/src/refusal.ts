import { isDpsError } from '@opendps/model';

/**
 * Why a registration was refused, for the operator only: the device still gets the same DPS error
 * (a wrong key and an unknown registration id are both 401002, so a caller cannot enumerate
 * enrollments). The reason travels beside the error, never inside it.
 */
export type RefusalReason =
  | 'unknownIdScope'
  | 'invalidRequest'
  | 'noCredentials'
  | 'malformedToken'
  | 'unknownEnrollment'
  | 'wrongKey'
  | 'wrongAttestation'
  | 'wrongResource'
  | 'tokenExpired'
  | 'enrollmentDisabled'
  | 'untrustedChain'
  | 'certificateExpired'
  | 'unverifiedCa'
  | 'tpmChallengeIssued'
  | 'tpmChallengeFailed'
  | 'throttled'
  | 'noHub'
  | 'webhookFailed'
  | 'hubUnavailable'
  | 'storeUnavailable'
  | 'operationNotFound'
  | 'registrationNotFound'
  | 'unauthorized'
  | 'internal';

const reasons = new WeakMap<object, RefusalReason>();

/** Tags `error` with why it was thrown (the first tag wins) and returns it, for `throw because(...)`. */
export function because<E>(reason: RefusalReason, error: E): E {
  if (typeof error === 'object' && error !== null && !reasons.has(error)) reasons.set(error, reason);
  return error;
}

/** The tagged reason, else one read from the error code (codes that say it all need no tag). */
export function refusalReason(error: unknown): RefusalReason {
  const tagged = typeof error === 'object' && error !== null ? reasons.get(error) : undefined;
  if (tagged) return tagged;
  if (!isDpsError(error)) return 'internal';
  switch (error.errorCode) {
    case 404205:
      return 'unknownIdScope';
    case 401003:
      return 'tokenExpired';
    case 401005:
      return 'wrongResource';
    case 401006:
      return 'malformedToken';
    case 401007:
      return 'enrollmentDisabled';
    case 400208:
      return 'noHub';
    case 404204:
      return 'operationNotFound';
    case 404202:
      return 'registrationNotFound';
    case 502201:
    case 502202:
    case 504201:
      return 'webhookFailed';
    case 503002:
      return 'storeUnavailable';
  }
  if (error.status === 429) return 'throttled';
  if (error.status === 503) return 'hubUnavailable';
  if (error.status === 400) return 'invalidRequest';
  if (error.status === 401) return 'unauthorized';
  return 'internal';
}

/** X.509 refusals are all 401002; their message (already the device's) tells which check failed. */
export function x509Reason(message: string): RefusalReason {
  if (/has expired|not valid yet/i.test(message)) return 'certificateExpired';
  if (/not verified|proof of possession/i.test(message)) return 'unverifiedCa';
  if (/no enrollment matches|enrolled for registration id|does not match the registration id|no subject common name/i.test(message)) {
    return 'unknownEnrollment';
  }
  if (/no client certificate was presented/i.test(message)) return 'noCredentials';
  return 'untrustedChain';
}

const traced = new WeakSet<object>();

/** Marks a refusal the service has already logged as its outcome's trace line. */
export function markTraced<E>(error: E): E {
  if (typeof error === 'object' && error !== null) traced.add(error);
  return error;
}

/**
 * The level at which a front-end logs a refusal: `debug` when the service already traced it (one
 * `info` line per outcome, docs/observability.md), `info` when the service never saw the request
 * (a body the front-end could not decode).
 */
export function refusalLogLevel(error: unknown): 'info' | 'debug' {
  return typeof error === 'object' && error !== null && traced.has(error) ? 'debug' : 'info';
}
