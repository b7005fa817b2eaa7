import {
  Errors,
  type DeviceRegistrationState,
  type EnrollmentGroup,
  type IndividualEnrollment,
  type InitialTwin,
  type LinkedHub,
  type TwinCollection,
  isEnrollmentGroup,
} from '@opendps/model';
import { findHub } from './candidates';

/** What the device proved, as a custom allocation webhook sees it (docs/service-rest.md §12). Holds no secrets. */
export type RuntimeAttestation =
  | { type: 'x509'; x509: NonNullable<DeviceRegistrationState['x509']> }
  | { type: 'symmetricKey' }
  | { type: 'tpm'; tpm: { endorsementKey: string; storageRootKey?: string } };

/** The AllocationRequest body POSTed to the webhook (concepts-custom-allocation; JSON spellings). */
export interface WebhookAllocationRequest {
  individualEnrollment?: IndividualEnrollment;
  enrollmentGroup?: EnrollmentGroup;
  deviceRuntimeContext: {
    registrationId: string;
    currentIotHubHostName?: string;
    currentDeviceId?: string;
    x509?: NonNullable<DeviceRegistrationState['x509']>;
    symmetricKey?: Record<string, never>;
    tpm?: { endorsementKey: string; storageRootKey?: string };
    payload?: unknown;
  };
  /** Host names of the hubs the webhook may choose from. */
  linkedHubs: string[];
}

/** A validated AllocationResponse: `hub` is one of the offered candidates. */
export interface WebhookAllocation {
  hub: LinkedHub;
  initialTwin?: InitialTwin;
  payload?: unknown;
}

/**
 * Transport to a custom allocation webhook. Resolves the answer's parsed JSON (validated by
 * `parseAllocationResponse`); every failure is a coded DpsError.
 */
export interface WebhookClient {
  call(webhookUrl: string, request: WebhookAllocationRequest): Promise<unknown>;
}

export interface WebhookRequestInput {
  enrollment: IndividualEnrollment | EnrollmentGroup;
  registrationId: string;
  current?: { hubHostName: string; deviceId?: string };
  attestation: RuntimeAttestation;
  payload?: unknown;
  candidates: readonly LinkedHub[];
}

export function buildAllocationRequest(input: WebhookRequestInput): WebhookAllocationRequest {
  const enrollment = webhookView(input.enrollment);
  const { attestation } = input;
  return {
    ...(isEnrollmentGroup(enrollment)
      ? { enrollmentGroup: enrollment }
      : { individualEnrollment: enrollment as IndividualEnrollment }),
    deviceRuntimeContext: {
      registrationId: input.registrationId,
      ...(input.current ? { currentIotHubHostName: input.current.hubHostName } : {}),
      ...(input.current?.deviceId ? { currentDeviceId: input.current.deviceId } : {}),
      ...(attestation.type === 'x509' ? { x509: attestation.x509 } : {}),
      ...(attestation.type === 'symmetricKey' ? { symmetricKey: {} } : {}),
      ...(attestation.type === 'tpm' ? { tpm: attestation.tpm } : {}),
      ...(input.payload !== undefined ? { payload: input.payload } : {}),
    },
    linkedHubs: input.candidates.map((hub) => hub.hostName),
  };
}

/**
 * The enrollment as the webhook gets it: secrets removed. Symmetric keys never leave the service
 * (the documented example shows `attestation: {type: "symmetricKey"}`); certificates keep their info only.
 */
function webhookView(enrollment: IndividualEnrollment | EnrollmentGroup): IndividualEnrollment | EnrollmentGroup {
  const { attestation } = enrollment;
  const withInfoOnly = (pair: { primary?: { info?: unknown }; secondary?: { info?: unknown } } | undefined) =>
    pair && {
      ...(pair.primary ? { primary: { ...(pair.primary.info ? { info: pair.primary.info } : {}) } } : {}),
      ...(pair.secondary ? { secondary: { ...(pair.secondary.info ? { info: pair.secondary.info } : {}) } } : {}),
    };
  const x509 = attestation.x509 && {
    ...(attestation.x509.clientCertificates ? { clientCertificates: withInfoOnly(attestation.x509.clientCertificates) } : {}),
    ...(attestation.x509.signingCertificates ? { signingCertificates: withInfoOnly(attestation.x509.signingCertificates) } : {}),
    ...(attestation.x509.caReferences ? { caReferences: attestation.x509.caReferences } : {}),
  };
  return {
    ...enrollment,
    attestation: {
      type: attestation.type,
      ...(attestation.tpm ? { tpm: attestation.tpm } : {}),
      ...(x509 ? { x509: x509 as typeof attestation.x509 } : {}),
    },
  };
}

/**
 * Validates an AllocationResponse, reading its fields case-insensitively (`iotHubHostName` in the
 * JSON examples, `iotHubHostname` in the doc table; docs/service-rest.md §12). No or an unknown hub is the
 * device-visible 400208; any other malformation is 502202.
 */
export function parseAllocationResponse(body: unknown, candidates: readonly LinkedHub[]): WebhookAllocation {
  if (!isPlainObject(body)) throw Errors.webhookInvalidResponse('The custom allocation webhook did not answer with a JSON object.');
  const hubName = field(body, 'iotHubHostName');
  if (hubName === undefined || hubName === null || hubName === '') {
    throw Errors.noHubForDevice('The custom allocation webhook returned no iotHubHostName.');
  }
  if (typeof hubName !== 'string') throw Errors.webhookInvalidResponse("The webhook's iotHubHostName is not a string.");
  const hub = findHub(candidates, hubName);
  if (!hub) {
    throw Errors.noHubForDevice(`The custom allocation webhook chose '${hubName.slice(0, 256)}', which is not one of the linked hubs offered.`);
  }
  const initialTwin = parseInitialTwin(field(body, 'initialTwin'));
  const payload = field(body, 'payload');
  return {
    hub,
    ...(initialTwin ? { initialTwin } : {}),
    ...(payload !== undefined && payload !== null ? { payload } : {}),
  };
}

function parseInitialTwin(value: unknown): InitialTwin | undefined {
  if (value === undefined || value === null) return undefined;
  const invalid = (detail: string) => Errors.webhookInvalidResponse(`The webhook's initialTwin is invalid: ${detail}`);
  if (!isPlainObject(value)) throw invalid('not an object.');
  const tags = field(value, 'tags');
  const properties = field(value, 'properties');
  if (tags !== undefined && tags !== null && !isPlainObject(tags)) throw invalid('tags is not an object.');
  if (properties !== undefined && properties !== null && !isPlainObject(properties)) throw invalid('properties is not an object.');
  const desired = isPlainObject(properties) ? field(properties, 'desired') : undefined;
  if (desired !== undefined && desired !== null && !isPlainObject(desired)) throw invalid('properties.desired is not an object.');
  return {
    ...(isPlainObject(tags) ? { tags: tags as TwinCollection } : {}),
    ...(isPlainObject(desired) ? { properties: { desired: desired as TwinCollection } } : {}),
  };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The value of `name` in `body`, matched case-insensitively; an exact match wins. */
function field(body: Record<string, unknown>, name: string): unknown {
  if (Object.prototype.hasOwnProperty.call(body, name)) return body[name];
  const lower = name.toLowerCase();
  const key = Object.keys(body).find((candidate) => candidate.toLowerCase() === lower);
  return key === undefined ? undefined : body[key];
}
