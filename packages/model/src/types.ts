/** The DPS vocabulary (docs/service-rest.md §3, docs/device-wire.md §6). Wire shapes keep the wire names. */

export type TwinCollection = Record<string, unknown>;

export interface InitialTwin {
  tags?: TwinCollection;
  properties?: { desired?: TwinCollection };
}

export type ProvisioningStatus = 'enabled' | 'disabled';
export type AllocationPolicy = 'hashed' | 'geoLatency' | 'static' | 'custom';

export interface ReprovisionPolicy {
  updateHubAssignment: boolean;
  migrateDeviceData: boolean;
}

export interface CustomAllocationDefinition {
  webhookUrl: string;
  apiVersion: string;
}

export interface X509CertificateInfo {
  subjectName: string;
  sha1Thumbprint: string;
  sha256Thumbprint: string;
  issuerName: string;
  notBeforeUtc: string;
  notAfterUtc: string;
  serialNumber: string;
  version: number;
}

export interface X509CertificateWithInfo {
  /** Accepted on write; never echoed on read (docs/service-rest.md §4). */
  certificate?: string;
  info?: X509CertificateInfo;
}

export interface X509Certificates {
  primary?: X509CertificateWithInfo;
  secondary?: X509CertificateWithInfo;
}

export interface X509CAReferences {
  primary?: string;
  secondary?: string;
}

export interface X509Attestation {
  clientCertificates?: X509Certificates;
  signingCertificates?: X509Certificates;
  caReferences?: X509CAReferences;
}

export interface SymmetricKeyAttestation {
  primaryKey: string;
  secondaryKey: string;
}

export interface TpmAttestation {
  /** base64 of the TPM2B_PUBLIC including its 2-byte size. */
  endorsementKey: string;
  storageRootKey?: string;
}

export type AttestationType = 'none' | 'tpm' | 'x509' | 'symmetricKey';

export interface AttestationMechanism {
  type: AttestationType;
  tpm?: TpmAttestation;
  x509?: X509Attestation;
  symmetricKey?: SymmetricKeyAttestation;
}

export type RegistrationStatus = 'unassigned' | 'assigning' | 'assigned' | 'failed' | 'disabled';
export type RegistrationSubstatus =
  | 'initialAssignment'
  | 'deviceDataMigrated'
  | 'deviceDataReset'
  | 'reprovisionedToInitialAssignment';

/** DeviceRegistrationState as the service API returns it, and DeviceRegistrationResult as devices see it. */
export interface DeviceRegistrationState {
  registrationId: string;
  createdDateTimeUtc?: string;
  assignedHub?: string;
  deviceId?: string;
  status: RegistrationStatus;
  substatus?: RegistrationSubstatus;
  errorCode?: number;
  errorMessage?: string;
  lastUpdatedDateTimeUtc?: string;
  etag?: string;
  payload?: unknown;
  tpm?: { authenticationKey: string };
  x509?: {
    certificateInfo?: X509CertificateInfo;
    enrollmentGroupId?: string;
    signingCertificateInfo?: X509CertificateInfo;
  };
  symmetricKey?: { enrollmentGroupId?: string };
}

interface EnrollmentCommon {
  attestation: AttestationMechanism;
  iotHubHostName?: string;
  iotHubs?: string[];
  capabilities?: { iotEdge: boolean };
  initialTwin?: InitialTwin;
  etag?: string;
  provisioningStatus?: ProvisioningStatus;
  reprovisionPolicy?: ReprovisionPolicy;
  allocationPolicy?: AllocationPolicy;
  customAllocationDefinition?: CustomAllocationDefinition;
  createdDateTimeUtc?: string;
  lastUpdatedDateTimeUtc?: string;
}

export interface IndividualEnrollment extends EnrollmentCommon {
  registrationId: string;
  deviceId?: string;
  registrationState?: DeviceRegistrationState;
  optionalDeviceInformation?: TwinCollection;
}

export interface EnrollmentGroup extends EnrollmentCommon {
  enrollmentGroupId: string;
}

export type Enrollment = IndividualEnrollment | EnrollmentGroup;

export function isEnrollmentGroup(enrollment: Enrollment): enrollment is EnrollmentGroup {
  return (enrollment as EnrollmentGroup).enrollmentGroupId !== undefined;
}

/** RegistrationOperationStatus: what a device is answered on register and on every poll. */
export interface RegistrationOperationStatus {
  operationId: string;
  status: RegistrationStatus;
  registrationState?: DeviceRegistrationState;
}

export type BulkMode = 'create' | 'update' | 'updateIfMatchETag' | 'delete';

export interface BulkEnrollmentOperationResult {
  isSuccessful: boolean;
  errors: Array<{ registrationId?: string; enrollmentGroupId?: string; errorCode: number; errorStatus: string }>;
}

// --- The control plane --------------------------------------------------------------------------

export type AccessRight =
  | 'ServiceConfig'
  | 'EnrollmentRead'
  | 'EnrollmentWrite'
  | 'RegistrationStatusRead'
  | 'RegistrationStatusWrite';

export const ALL_RIGHTS: readonly AccessRight[] = [
  'ServiceConfig',
  'EnrollmentRead',
  'EnrollmentWrite',
  'RegistrationStatusRead',
  'RegistrationStatusWrite',
];

export interface SharedAccessPolicy {
  keyName: string;
  primaryKey: string;
  secondaryKey: string;
  rights: AccessRight[];
}

export interface LinkedHub {
  /** Short name used in config and the CLI (`hub-1`). */
  name: string;
  /**
   * What devices see as `assignedHub`. A built-in hub: `host` when served on the device listeners
   * with MQTT on 8883, else `host:port` (docs/architecture.md "Hub addresses").
   */
  hostName: string;
  /**
   * A built-in hub: `port` gives it a listener of its own (0 = pick one); without one it is served
   * on the device listeners. `hostName` (no port) is its host, default `--host`. Azure hubs carry
   * a connection string instead.
   */
  builtin?: { port?: number; hostName?: string };
  connectionString?: string;
  allocationWeight: number;
  applyAllocationPolicy: boolean;
  location?: string;
}

export interface ProvisioningInstance {
  name: string;
  /** `0ne` + 8 uppercase hex digits. */
  idScope: string;
  /** The service host name, as the service connection string's HostName. */
  serviceHostName: string;
  policies: SharedAccessPolicy[];
  linkedHubs: LinkedHub[];
  allocationPolicy: Exclude<AllocationPolicy, 'custom'>;
  /** Throttling quotas (docs/service-rest.md §15); absent fields take generous defaults. */
  quotas?: InstanceQuotas;
}

/** Per-instance throttling quotas, shared by every node through the store's counters. */
export interface InstanceQuotas {
  /** Device `register` requests per second for the whole instance. */
  registrationsPerSecond?: number;
  /** Operation-status polls and registration-status lookups per second for the whole instance. */
  pollsPerSecond?: number;
  /** Polls per device per 10 s (Azure: 5). Off unless set. */
  devicePollsPer10Seconds?: number;
}

/** A CA certificate registered on an instance, usable by `caReferences` once proven. */
export interface CaCertificate {
  name: string;
  certificate: string;
  info: X509CertificateInfo;
  isVerified: boolean;
  /** Present while a proof of possession is pending. */
  verificationCode?: string;
  etag?: string;
  createdDateTimeUtc?: string;
  lastUpdatedDateTimeUtc?: string;
}
