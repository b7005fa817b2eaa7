import type { X509CertificateInfo as CertificateInfo } from '../../../model/src/types';

/**
 * What differs between individual enrollments and enrollment groups for the console: their service
 * API paths, id field and wording (docs/service-rest.md §1, §3). The pages share everything else.
 */
export interface EnrollmentKind {
  kind: 'individual' | 'group';
  /** Path of the collection in the service API and of the console route. */
  apiPath: '/enrollments' | '/enrollmentGroups';
  route: '/enrollments' | '/groups';
  idField: 'registrationId' | 'enrollmentGroupId';
  /** The array field of a bulk operation. */
  bulkField: 'enrollments' | 'enrollmentGroups';
  noun: string;
  idLabel: string;
}

export const INDIVIDUAL: EnrollmentKind = {
  kind: 'individual',
  apiPath: '/enrollments',
  route: '/enrollments',
  idField: 'registrationId',
  bulkField: 'enrollments',
  noun: 'enrollment',
  idLabel: 'Registration ID',
};

export const GROUP: EnrollmentKind = {
  kind: 'group',
  apiPath: '/enrollmentGroups',
  route: '/groups',
  idField: 'enrollmentGroupId',
  bulkField: 'enrollmentGroups',
  noun: 'group',
  idLabel: 'Group ID',
};

/** A certificate's details as the service API shows them: the server's own type (types only, bundled as is). */
export type { CertificateInfo };

export interface CertificateSlot {
  certificate?: string;
  info?: CertificateInfo;
}

export interface CertificatePair {
  primary?: CertificateSlot;
  secondary?: CertificateSlot;
}

export interface Attestation {
  type: 'symmetricKey' | 'x509' | 'tpm';
  symmetricKey?: { primaryKey?: string; secondaryKey?: string };
  x509?: { clientCertificates?: CertificatePair; signingCertificates?: CertificatePair; caReferences?: { primary?: string; secondary?: string } };
  tpm?: { endorsementKey: string; storageRootKey?: string };
}

export interface RegistrationState {
  registrationId: string;
  status: string;
  assignedHub?: string;
  deviceId?: string;
  substatus?: string;
  errorCode?: number;
  errorMessage?: string;
  createdDateTimeUtc?: string;
  lastUpdatedDateTimeUtc?: string;
  etag?: string;
}

/** An enrollment or group as the service API reads and writes it (fields the console edits). */
export interface EnrollmentRecord {
  registrationId?: string;
  enrollmentGroupId?: string;
  deviceId?: string;
  attestation: Attestation;
  iotHubs?: string[];
  iotHubHostName?: string;
  allocationPolicy?: string;
  customAllocationDefinition?: { webhookUrl: string; apiVersion: string };
  reprovisionPolicy?: { updateHubAssignment: boolean; migrateDeviceData: boolean };
  provisioningStatus?: 'enabled' | 'disabled';
  capabilities?: { iotEdge: boolean };
  initialTwin?: Record<string, unknown>;
  registrationState?: RegistrationState;
  etag?: string;
  createdDateTimeUtc?: string;
  lastUpdatedDateTimeUtc?: string;
  [field: string]: unknown;
}

export function idOf(kind: EnrollmentKind, record: EnrollmentRecord): string {
  return String(record[kind.idField] ?? '');
}
