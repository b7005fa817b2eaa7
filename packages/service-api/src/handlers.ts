import type { OperationHandler } from './context';
import { bulkHandler } from './bulk';
import { certificateHandlers } from './certificates-handlers';
import {
  attestationHandler,
  deleteEnrollmentHandler,
  getEnrollmentHandler,
  putEnrollmentHandler,
  queryEnrollmentsHandler,
} from './enrollment-handlers';
import { groupEnrollments, individualEnrollments } from './enrollment-kinds';
import { deleteRegistration, getRegistration, queryRegistrations } from './registration-handlers';
import type { Operation } from './routes';

/** One handler per operation; routing names the operation. */
export const handlers: Record<Operation, OperationHandler> = {
  getEnrollment: getEnrollmentHandler(individualEnrollments),
  putEnrollment: putEnrollmentHandler(individualEnrollments),
  deleteEnrollment: deleteEnrollmentHandler(individualEnrollments),
  getEnrollmentAttestation: attestationHandler(individualEnrollments),
  queryEnrollments: queryEnrollmentsHandler(individualEnrollments),
  bulkEnrollments: bulkHandler(individualEnrollments),
  getEnrollmentGroup: getEnrollmentHandler(groupEnrollments),
  putEnrollmentGroup: putEnrollmentHandler(groupEnrollments),
  deleteEnrollmentGroup: deleteEnrollmentHandler(groupEnrollments),
  getEnrollmentGroupAttestation: attestationHandler(groupEnrollments),
  queryEnrollmentGroups: queryEnrollmentsHandler(groupEnrollments),
  bulkEnrollmentGroups: bulkHandler(groupEnrollments),
  getRegistration,
  deleteRegistration,
  queryRegistrations,
  ...certificateHandlers,
};
