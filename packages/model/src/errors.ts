import { randomUUID } from 'node:crypto';
import { utcNow } from './time';

/**
 * The one error a device or an operator can see. Every front-end maps it to its wire
 * (HTTP response, MQTT status topic, AMQP disposition) and nothing else decides a status.
 * `errorCode` follows DPS: HTTP status x 1000 + n (docs/service-rest.md §7).
 */
export class DpsError extends Error {
  readonly trackingId: string = randomUUID();
  readonly timestampUtc: string = utcNow();

  constructor(
    readonly status: number,
    readonly errorCode: number,
    message: string,
    readonly info?: Record<string, string>,
  ) {
    super(message);
    this.name = 'DpsError';
  }

  /** The DPS error body (ProvisioningServiceErrorDetails). */
  toJSON(): DpsErrorBody {
    return {
      errorCode: this.errorCode,
      trackingId: this.trackingId,
      message: this.message,
      ...(this.info ? { info: this.info } : {}),
      timestampUtc: this.timestampUtc,
    };
  }
}

export interface DpsErrorBody {
  errorCode: number;
  trackingId: string;
  message: string;
  info?: Record<string, string>;
  timestampUtc: string;
}

type Factory<A extends unknown[]> = (...args: A) => DpsError;
const coded =
  (status: number, errorCode: number, fallback: string): Factory<[detail?: string, info?: Record<string, string>]> =>
  (detail, info) =>
    new DpsError(status, errorCode, detail ?? fallback, info);

/** The catalogue of codes. Codes seen on real DPS keep their real value (docs/service-rest.md §7). */
export const Errors = {
  invalidJson: coded(400, 400001, 'The request body is not valid JSON.'),
  invalidField: coded(400, 400002, 'A field of the request is invalid.'),
  invalidRegistrationId: coded(400, 400003, 'The registration id is invalid.'),
  invalidEnrollmentGroupId: coded(400, 400004, 'The enrollment group id is invalid.'),
  invalidCertificate: coded(400, 400005, 'The certificate is invalid.'),
  invalidSymmetricKey: coded(400, 400006, 'A symmetric key must be base64 of 16 to 64 bytes.'),
  invalidQuery: coded(400, 400007, 'The query is not supported.'),
  bulkTooLarge: coded(400, 400008, 'A bulk operation takes at most 10 items.'),
  idMismatch: coded(400, 400009, 'The id in the body does not match the id in the path.'),
  invalidAttestation: coded(400, 400010, 'The attestation mechanism is invalid.'),
  invalidTpmKey: coded(400, 400011, 'The TPM key is not a valid TPM2B_PUBLIC.'),
  invalidAllocation: coded(400, 400012, 'The allocation settings are invalid.'),
  invalidTopic: coded(400, 400013, 'The topic or path is not a DPS registration request.'),
  invalidDeviceId: coded(400, 400014, 'The device id is invalid.'),
  invalidHeader: coded(400, 400015, 'A request header is invalid.'),
  noVerificationCode: coded(400, 400016, 'No verification code is pending for this CA certificate; generate one first.'),
  invalidInitialTwin: coded(400, 400017, 'The initial twin breaks the IoT Hub twin limits.'),
  noHubForDevice: coded(400, 400208, 'No linked IoT hub is available for this device.'),
  deviceUnauthorizedAtHub: coded(400, 400209, 'The device could not be registered at its IoT hub.'),

  unauthorized: coded(401, 401000, 'Unauthorized.'),
  invalidSignature: coded(401, 401002, 'Unauthorized.'),
  invalidClientCertificate: coded(401, 401002, 'Invalid certificate.'),
  tokenExpired: coded(401, 401003, 'The SAS token has expired.'),
  insufficientRights: coded(401, 401004, 'The access policy does not grant the right this operation needs.'),
  wrongResource: coded(401, 401005, 'The SAS token was issued for another resource.'),
  malformedToken: coded(401, 401006, 'The SAS token is malformed.'),
  enrollmentDisabled: coded(401, 401007, 'The enrollment is disabled.'),

  originNotAllowed: coded(403, 403001, 'WebSocket upgrades from this page origin are not allowed.'),

  notFound: coded(404, 404001, 'The resource was not found.'),
  enrollmentNotFound: coded(404, 404201, 'The enrollment was not found.'),
  registrationNotFound: coded(404, 404202, 'The device registration was not found.'),
  enrollmentGroupNotFound: coded(404, 404203, 'The enrollment group was not found.'),
  operationNotFound: coded(404, 404204, 'The operation was not found or has expired.'),
  idScopeNotFound: coded(404, 404205, 'The ID scope is unknown.'),
  certificateNotFound: coded(404, 404206, 'The CA certificate was not found.'),
  hubNotFound: coded(404, 404207, 'The linked IoT hub was not found.'),
  instanceNotFound: coded(404, 404208, 'The provisioning instance was not found.'),
  deviceNotFound: coded(404, 404209, 'The device was not found on the hub.'),

  methodNotAllowed: coded(405, 405001, 'The method is not allowed on this resource.'),
  conflict: coded(409, 409001, 'The resource already exists.'),
  caCertificateInUse: coded(409, 409002, 'The CA certificate is referenced by enrollment groups.'),
  caCertificateLimit: coded(409, 409003, 'The instance already holds the most CA certificates it may.'),
  preconditionFailed: coded(
    412,
    412001,
    'The ETag in the request does not match the ETag of the existing resource, as per RFC7232.',
  ),
  payloadTooLarge: coded(413, 413001, 'The request body is too large.'),
  unsupportedMediaType: coded(415, 415001, 'The request body must be application/json.'),
  throttled: coded(429, 429001, 'Too many requests; retry after the given delay.'),
  internal: coded(500, 500001, 'Internal server error.'),
  webhookFailed: coded(502, 502201, 'The custom allocation webhook failed.'),
  webhookInvalidResponse: coded(502, 502202, 'The custom allocation webhook returned an invalid response.'),
  hubUnavailable: coded(503, 503001, 'The IoT hub could not be reached.'),
  storeUnavailable: coded(503, 503002, 'The state store is unavailable; retry after the given delay.'),
  webhookTimeout: coded(504, 504201, 'The custom allocation webhook did not answer in time.'),
} as const;

export type ErrorName = keyof typeof Errors;

export function isDpsError(value: unknown): value is DpsError {
  return value instanceof DpsError;
}

/** Any thrown value as a DpsError; unknown failures become 500 without leaking their text. */
export function toDpsError(value: unknown): DpsError {
  return isDpsError(value) ? value : Errors.internal();
}
