import { randomBytes } from 'node:crypto';
import { certificateInfo, parseCertificate } from './certificates';
import { DpsError, Errors } from './errors';
import { hubMatches } from './instance';
import { TWIN_LIMITS, assertTwinSection } from './twin-limits';
import type {
  AllocationPolicy,
  AttestationMechanism,
  CustomAllocationDefinition,
  EnrollmentGroup,
  IndividualEnrollment,
  InitialTwin,
  LinkedHub,
  ReprovisionPolicy,
  SymmetricKeyAttestation,
  TpmAttestation,
  X509Attestation,
  X509CertificateInfo,
  X509Certificates,
} from './types';
import { checkWebhookUrl, type WebhookUrlPolicy } from './webhook-url';

/**
 * What an enrollment is checked against beyond its own shape: its instance (a `static` hub must
 * be one of its linked hubs) and which webhook URLs this server may call. Omitted, the hub check
 * is skipped and webhooks must be https://.
 */
export interface EnrollmentRules {
  linkedHubs?: readonly Pick<LinkedHub, 'name' | 'hostName'>[];
  /** The instance's default policy: an enrollment without its own follows it, `static` included. */
  defaultAllocationPolicy?: AllocationPolicy;
  webhooks?: WebhookUrlPolicy;
}

/**
 * Registration and enrollment ids: alphanumerics plus `: . _ -`, at most 128 characters, no special
 * character first or last (service.json; docs/service-rest.md §14).
 */
const ID_PATTERN = /^[A-Za-z0-9](?:[A-Za-z0-9:._-]{0,126}[A-Za-z0-9])?$/;
/** IoT Hub device ids: up to 128 of alphanumerics and `- . % _ * ? ! ( ) , : = @ $ '`. */
const DEVICE_ID_PATTERN = /^[A-Za-z0-9\-.%_*?!(),:=@$']{1,128}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function isValidRegistrationId(id: unknown): id is string {
  return typeof id === 'string' && ID_PATTERN.test(id);
}

export function assertRegistrationId(id: unknown): string {
  if (!isValidRegistrationId(id)) {
    throw Errors.invalidRegistrationId(
      'A registration id is 1-128 alphanumerics or : . _ - and neither starts nor ends with a special character.',
    );
  }
  return id;
}

export function assertEnrollmentGroupId(id: unknown): string {
  if (!isValidRegistrationId(id)) {
    throw Errors.invalidEnrollmentGroupId(
      'An enrollment group id is 1-128 alphanumerics or : . _ - and neither starts nor ends with a special character.',
    );
  }
  return id;
}

export function assertDeviceId(id: unknown): string {
  if (typeof id !== 'string' || !DEVICE_ID_PATTERN.test(id)) {
    throw Errors.invalidDeviceId("A device id is 1-128 alphanumerics or - . % _ * ? ! ( ) , : = @ $ '.");
  }
  return id;
}

/** base64 of 16 to 64 bytes, as DPS requires of symmetric keys. */
export function assertSymmetricKey(key: unknown, field = 'symmetric key'): string {
  if (typeof key !== 'string' || !BASE64.test(key)) throw Errors.invalidSymmetricKey(`The ${field} is not base64.`);
  const length = Buffer.from(key, 'base64').length;
  if (length < 16 || length > 64) throw Errors.invalidSymmetricKey(`The ${field} is ${length} bytes; 16 to 64 are allowed.`);
  return key;
}

/** DPS generates 64-byte keys when a symmetric-key enrollment omits them. */
export function generateSymmetricKey(): string {
  return randomBytes(64).toString('base64');
}

// --- generic field checks ----------------------------------------------------------------------

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function object(value: unknown, field: string): Json {
  if (!isObject(value)) throw Errors.invalidField(`'${field}' must be an object.`);
  return value;
}

function optionalObject(value: unknown, field: string): Json | undefined {
  return value === undefined || value === null ? undefined : object(value, field);
}

function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw Errors.invalidField(`'${field}' must be a string.`);
  return value;
}

function optionalBoolean(value: unknown, field: string): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw Errors.invalidField(`'${field}' must be a boolean.`);
  return value;
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], field: string): T | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    throw Errors.invalidField(`'${field}' must be one of ${allowed.join(', ')}.`);
  }
  return value as T;
}

// --- attestation ----------------------------------------------------------------------------------

function symmetricKeyAttestation(value: unknown): SymmetricKeyAttestation {
  const body = optionalObject(value, 'attestation.symmetricKey') ?? {};
  const primaryKey = body.primaryKey ?? undefined;
  const secondaryKey = body.secondaryKey ?? undefined;
  return {
    primaryKey:
      primaryKey === undefined || primaryKey === '' ? generateSymmetricKey() : assertSymmetricKey(primaryKey, 'primary key'),
    secondaryKey:
      secondaryKey === undefined || secondaryKey === ''
        ? generateSymmetricKey()
        : assertSymmetricKey(secondaryKey, 'secondary key'),
  };
}

function tpmAttestation(value: unknown): TpmAttestation {
  const body = object(value, 'attestation.tpm');
  const endorsementKey = optionalString(body.endorsementKey, 'attestation.tpm.endorsementKey');
  if (!endorsementKey || !BASE64.test(endorsementKey)) {
    throw Errors.invalidTpmKey('attestation.tpm.endorsementKey must be base64 of a TPM2B_PUBLIC.');
  }
  const decoded = Buffer.from(endorsementKey, 'base64');
  if (decoded.length < 4 || decoded.readUInt16BE(0) !== decoded.length - 2) {
    throw Errors.invalidTpmKey('attestation.tpm.endorsementKey must start with its 2-byte size.');
  }
  const storageRootKey = optionalString(body.storageRootKey, 'attestation.tpm.storageRootKey');
  return { endorsementKey, ...(storageRootKey ? { storageRootKey } : {}) };
}

function certificates(value: unknown, field: string): X509Certificates | undefined {
  const body = optionalObject(value, field);
  if (!body) return undefined;
  const result: X509Certificates = {};
  for (const slot of ['primary', 'secondary'] as const) {
    const entry = optionalObject(body[slot], `${field}.${slot}`);
    if (!entry) continue;
    const certificate = optionalString(entry.certificate, `${field}.${slot}.certificate`);
    if (certificate) {
      const parsed = parseCertificate(certificate);
      result[slot] = { certificate: parsed.pem, info: certificateInfo(parsed) };
    } else if (isObject(entry.info)) {
      // A read-modify-write round trip sends back `info` without the certificate: keep what we have.
      const info = entry.info;
      if (typeof info.sha256Thumbprint !== 'string' || typeof info.sha1Thumbprint !== 'string') {
        throw Errors.invalidCertificate(`${field}.${slot}.info needs its thumbprints, or send the certificate.`);
      }
      result[slot] = { info: info as unknown as X509CertificateInfo };
    } else {
      throw Errors.invalidCertificate(`${field}.${slot} needs a certificate.`);
    }
  }
  if (!result.primary) throw Errors.invalidCertificate(`${field}.primary is required.`);
  return result;
}

function x509Attestation(value: unknown, kind: 'individual' | 'group'): X509Attestation {
  const body = object(value, 'attestation.x509');
  const clientCertificates = certificates(body.clientCertificates, 'attestation.x509.clientCertificates');
  const signingCertificates = certificates(body.signingCertificates, 'attestation.x509.signingCertificates');
  const refs = optionalObject(body.caReferences, 'attestation.x509.caReferences');
  const caReferences = refs
    ? {
        primary: optionalString(refs.primary, 'attestation.x509.caReferences.primary'),
        secondary: optionalString(refs.secondary, 'attestation.x509.caReferences.secondary'),
      }
    : undefined;
  const given = [clientCertificates, signingCertificates, caReferences?.primary].filter(Boolean).length;
  if (given !== 1) {
    throw Errors.invalidAttestation('An x509 attestation has exactly one of clientCertificates, signingCertificates, caReferences.');
  }
  if (kind === 'individual' && !clientCertificates) {
    throw Errors.invalidAttestation('An individual enrollment attests X.509 with clientCertificates.');
  }
  if (kind === 'group' && clientCertificates) {
    throw Errors.invalidAttestation('An enrollment group attests X.509 with signingCertificates or caReferences.');
  }
  return {
    ...(clientCertificates ? { clientCertificates } : {}),
    ...(signingCertificates ? { signingCertificates } : {}),
    ...(caReferences ? { caReferences: stripUndefined(caReferences) } : {}),
  };
}

export function validateAttestation(value: unknown, kind: 'individual' | 'group'): AttestationMechanism {
  const body = object(value, 'attestation');
  const type = oneOf(body.type, ['tpm', 'x509', 'symmetricKey'] as const, 'attestation.type');
  switch (type) {
    case 'symmetricKey':
      return { type, symmetricKey: symmetricKeyAttestation(body.symmetricKey) };
    case 'x509':
      return { type, x509: x509Attestation(body.x509, kind) };
    case 'tpm':
      if (kind === 'group') throw Errors.invalidAttestation('TPM attestation is for individual enrollments only.');
      return { type, tpm: tpmAttestation(body.tpm) };
    default:
      throw Errors.invalidAttestation("'attestation.type' is required: tpm, x509 or symmetricKey.");
  }
}

// --- enrollments ---------------------------------------------------------------------------------------

function initialTwin(value: unknown): InitialTwin | undefined {
  const body = optionalObject(value, 'initialTwin');
  if (!body) return undefined;
  const tags = optionalObject(body.tags, 'initialTwin.tags');
  const properties = optionalObject(body.properties, 'initialTwin.properties');
  const desired = properties ? optionalObject(properties.desired, 'initialTwin.properties.desired') : undefined;
  if (tags) assertTwinSection(tags, 'initialTwin.tags', TWIN_LIMITS.tagsBytes);
  if (desired) assertTwinSection(desired, 'initialTwin.properties.desired', TWIN_LIMITS.desiredBytes);
  return { ...(tags ? { tags } : {}), ...(desired ? { properties: { desired } } : {}) };
}

function reprovisionPolicy(value: unknown): ReprovisionPolicy | undefined {
  const body = optionalObject(value, 'reprovisionPolicy');
  if (!body) return undefined;
  return {
    updateHubAssignment: optionalBoolean(body.updateHubAssignment, 'reprovisionPolicy.updateHubAssignment') ?? true,
    migrateDeviceData: optionalBoolean(body.migrateDeviceData, 'reprovisionPolicy.migrateDeviceData') ?? true,
  };
}

function customAllocation(value: unknown, policy: WebhookUrlPolicy | undefined): CustomAllocationDefinition | undefined {
  const body = optionalObject(value, 'customAllocationDefinition');
  if (!body) return undefined;
  const webhookUrl = optionalString(body.webhookUrl, 'customAllocationDefinition.webhookUrl');
  const apiVersion = optionalString(body.apiVersion, 'customAllocationDefinition.apiVersion');
  if (!webhookUrl || !apiVersion) throw Errors.invalidAllocation('customAllocationDefinition needs webhookUrl and apiVersion.');
  checkWebhookUrl(webhookUrl, policy);
  return { webhookUrl, apiVersion };
}

const ALLOCATION_POLICIES: readonly AllocationPolicy[] = ['hashed', 'geoLatency', 'static', 'custom'];

function common(body: Json, rules: EnrollmentRules) {
  const iotHubs = body.iotHubs ?? undefined;
  if (iotHubs !== undefined && (!Array.isArray(iotHubs) || !iotHubs.every((hub) => typeof hub === 'string'))) {
    throw Errors.invalidField("'iotHubs' must be an array of host names.");
  }
  const allocationPolicy = oneOf(body.allocationPolicy, ALLOCATION_POLICIES, 'allocationPolicy');
  const customAllocationDefinition = customAllocation(body.customAllocationDefinition, rules.webhooks);
  if (allocationPolicy === 'custom' && !customAllocationDefinition) {
    throw Errors.invalidAllocation("allocationPolicy 'custom' needs a customAllocationDefinition.");
  }
  const iotHubHostName = optionalString(body.iotHubHostName, 'iotHubHostName');
  if ((allocationPolicy ?? rules.defaultAllocationPolicy) === 'static') {
    const named = new Set([...(iotHubs as string[] | undefined ?? []), ...(iotHubHostName ? [iotHubHostName] : [])]);
    if (named.size !== 1) throw Errors.invalidAllocation("allocationPolicy 'static' needs exactly one hub in iotHubs or iotHubHostName.");
    const [hub] = named;
    if (rules.linkedHubs && hub !== undefined && !rules.linkedHubs.some((linked) => hubMatches(linked, hub))) {
      throw Errors.invalidAllocation(`allocationPolicy 'static' names '${hub.slice(0, 256)}', which is not a hub linked to this instance.`);
    }
  }
  const capabilities = optionalObject(body.capabilities, 'capabilities');
  return stripUndefined({
    iotHubHostName,
    iotHubs: iotHubs as string[] | undefined,
    capabilities: { iotEdge: capabilities ? (optionalBoolean(capabilities.iotEdge, 'capabilities.iotEdge') ?? false) : false },
    initialTwin: initialTwin(body.initialTwin),
    provisioningStatus: oneOf(body.provisioningStatus, ['enabled', 'disabled'] as const, 'provisioningStatus') ?? 'enabled',
    reprovisionPolicy: reprovisionPolicy(body.reprovisionPolicy),
    allocationPolicy,
    customAllocationDefinition,
    etag: optionalString(body.etag, 'etag'),
  });
}

/**
 * Validates an IndividualEnrollment from a request body. Read-only fields are dropped, certificate
 * `info` is derived, omitted symmetric keys are generated. `pathId`, when given, must match the body.
 */
export function validateIndividualEnrollment(value: unknown, pathId?: string, rules: EnrollmentRules = {}): IndividualEnrollment {
  const body = object(value, 'enrollment');
  const registrationId = assertRegistrationId(body.registrationId ?? pathId);
  if (pathId !== undefined && registrationId.toLowerCase() !== pathId.toLowerCase()) {
    throw Errors.idMismatch(`The body's registrationId '${registrationId}' does not match '${pathId}'.`);
  }
  const deviceId = body.deviceId === undefined || body.deviceId === null || body.deviceId === '' ? undefined : assertDeviceId(body.deviceId);
  const optionalDeviceInformation = optionalObject(body.optionalDeviceInformation, 'optionalDeviceInformation');
  return stripUndefined({
    registrationId,
    deviceId,
    attestation: validateAttestation(body.attestation, 'individual'),
    optionalDeviceInformation,
    ...common(body, rules),
  });
}

export function validateEnrollmentGroup(value: unknown, pathId?: string, rules: EnrollmentRules = {}): EnrollmentGroup {
  const body = object(value, 'enrollmentGroup');
  const enrollmentGroupId = assertEnrollmentGroupId(body.enrollmentGroupId ?? pathId);
  if (pathId !== undefined && enrollmentGroupId.toLowerCase() !== pathId.toLowerCase()) {
    throw Errors.idMismatch(`The body's enrollmentGroupId '${enrollmentGroupId}' does not match '${pathId}'.`);
  }
  return stripUndefined({
    enrollmentGroupId,
    attestation: validateAttestation(body.attestation, 'group'),
    ...common(body, rules),
  });
}

/** Parses a JSON body, mapping failure to the coded error. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw Errors.invalidJson();
  }
}

function stripUndefined<T extends object>(value: T): T {
  for (const key of Object.keys(value) as Array<keyof T>) if (value[key] === undefined) delete value[key];
  return value;
}

export { DpsError };
