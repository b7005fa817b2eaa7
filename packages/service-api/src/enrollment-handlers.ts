import { registrations } from '@opendps/store';
import type { EnrollmentGroup, IndividualEnrollment } from '@opendps/model';
import { enrollmentRules, header, pathId, type OperationContext, type OperationHandler } from './context';
import type { EnrollmentKind } from './enrollment-kinds';
import { attestationView, enrollmentView } from './enrollment-views';
import { writeEnrollment } from './enrollment-writes';
import { assertQueryAll, pageOptions, queryResult } from './query';

type Enrollment = IndividualEnrollment | EnrollmentGroup;

export function getEnrollmentHandler<T extends Enrollment>(kind: EnrollmentKind<T>): OperationHandler {
  return async (context) => {
    const id = pathId(context);
    const enrollment = await kind.repository(context.store, context.instance.idScope).get(id);
    if (!enrollment) throw kind.notFound(id);
    const view = enrollmentView(enrollment);
    if (kind.idField === 'registrationId') await attachRegistrationState(context, view as IndividualEnrollment);
    return { status: 200, body: view };
  };
}

/** An individual enrollment shows the state of its own registration (not one made through a group). */
async function attachRegistrationState(context: OperationContext, enrollment: IndividualEnrollment): Promise<void> {
  const state = await registrations(context.store, context.instance.idScope).get(enrollment.registrationId);
  if (state && !state.x509?.enrollmentGroupId && !state.symmetricKey?.enrollmentGroupId) enrollment.registrationState = state;
}

/** PUT is an upsert; `If-Match: *` requires the record to exist and an etag must be current (docs/service-rest.md §6). */
export function putEnrollmentHandler<T extends Enrollment>(kind: EnrollmentKind<T>): OperationHandler {
  return async (context) => {
    const ifMatch = header(context, 'if-match');
    const stored = await writeEnrollment(kind, context.store, context.instance.idScope, context.body, pathId(context), {
      ...(ifMatch !== undefined ? { ifMatch } : {}),
    }, enrollmentRules(context));
    // The writer may read back the keys it sent or that were generated for it; certificates stay info-only.
    return { status: 200, body: enrollmentView(stored, { keys: true }) };
  };
}

export function deleteEnrollmentHandler<T extends Enrollment>(kind: EnrollmentKind<T>): OperationHandler {
  return async (context) => {
    const id = pathId(context);
    const ifMatch = header(context, 'if-match');
    const deleted = await kind
      .repository(context.store, context.instance.idScope)
      .delete(id, ifMatch !== undefined ? { ifMatch } : {});
    if (!deleted) throw kind.notFound(id);
    return { status: 204 };
  };
}

/** The attestation mechanism with its secrets (symmetric keys); certificates still as info only. */
export function attestationHandler<T extends Enrollment>(kind: EnrollmentKind<T>): OperationHandler {
  return async (context) => {
    const id = pathId(context);
    const enrollment = await kind.repository(context.store, context.instance.idScope).get(id);
    if (!enrollment) throw kind.notFound(id);
    return { status: 200, body: attestationView(enrollment.attestation, { keys: true }) };
  };
}

export function queryEnrollmentsHandler<T extends Enrollment>(kind: EnrollmentKind<T>): OperationHandler {
  return async (context) => {
    assertQueryAll(context.body);
    const options = pageOptions(context);
    const page = await kind.repository(context.store, context.instance.idScope).list(options);
    return queryResult(page, kind.itemType, options, (item) => enrollmentView(item));
  };
}
