import {
  Errors,
  assertEnrollmentGroupId,
  assertRegistrationId,
  validateEnrollmentGroup,
  validateIndividualEnrollment,
  type DpsError,
  type EnrollmentGroup,
  type EnrollmentRules,
  type IndividualEnrollment,
} from '@opendps/model';
import { enrollmentGroups, enrollments, type Repository, type Store } from '@opendps/store';
import type { ItemType } from './query';

/** What differs between individual enrollments and enrollment groups; the handlers are shared. */
export interface EnrollmentKind<T extends IndividualEnrollment | EnrollmentGroup> {
  itemType: Extract<ItemType, 'Enrollment' | 'EnrollmentGroup'>;
  /** The id field in bodies and in bulk errors. */
  idField: 'registrationId' | 'enrollmentGroupId';
  /** Where X.509 certificates of this kind live in the attestation. */
  certificateField: 'clientCertificates' | 'signingCertificates';
  /** The name bulk bodies carry the items under. */
  bulkField: 'enrollments' | 'enrollmentGroups';
  repository(store: Store, idScope: string): Repository<T>;
  validate(body: unknown, pathId?: string, rules?: EnrollmentRules): T;
  assertId(id: unknown): string;
  idOf(value: T): string;
  notFound(id: string): DpsError;
}

export const individualEnrollments: EnrollmentKind<IndividualEnrollment> = {
  itemType: 'Enrollment',
  idField: 'registrationId',
  certificateField: 'clientCertificates',
  bulkField: 'enrollments',
  repository: enrollments,
  validate: validateIndividualEnrollment,
  assertId: assertRegistrationId,
  idOf: (enrollment) => enrollment.registrationId,
  notFound: (id) => Errors.enrollmentNotFound(`The enrollment '${id}' was not found.`),
};

export const groupEnrollments: EnrollmentKind<EnrollmentGroup> = {
  itemType: 'EnrollmentGroup',
  idField: 'enrollmentGroupId',
  certificateField: 'signingCertificates',
  bulkField: 'enrollmentGroups',
  repository: enrollmentGroups,
  validate: validateEnrollmentGroup,
  assertId: assertEnrollmentGroupId,
  idOf: (group) => group.enrollmentGroupId,
  notFound: (id) => Errors.enrollmentGroupNotFound(`The enrollment group '${id}' was not found.`),
};
