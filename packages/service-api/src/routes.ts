import { Errors, assertEnrollmentGroupId, assertRegistrationId, type AccessRight } from '@opendps/model';
import { certificateRoute, type CertificateOperation } from './certificates-routes';

/**
 * The service API's routes (docs/service-rest.md §1). Segments are case-insensitive (Node sends
 * `/enrollmentGroups/{id}` but `/enrollmentgroups/{id}/attestationmechanism`), bulk may carry a
 * trailing slash, and ids arrive strict-URL-encoded.
 */
export type Operation =
  | 'getEnrollment'
  | 'putEnrollment'
  | 'deleteEnrollment'
  | 'getEnrollmentAttestation'
  | 'queryEnrollments'
  | 'bulkEnrollments'
  | 'getEnrollmentGroup'
  | 'putEnrollmentGroup'
  | 'deleteEnrollmentGroup'
  | 'getEnrollmentGroupAttestation'
  | 'queryEnrollmentGroups'
  | 'bulkEnrollmentGroups'
  | 'getRegistration'
  | 'deleteRegistration'
  | 'queryRegistrations'
  | CertificateOperation;

export interface Route {
  operation: Operation;
  /** The decoded id from the path (a registration id, or a group id). */
  id?: string;
  /** The policy right the operation needs (docs/service-rest.md §8). */
  right: AccessRight;
}

type Resource = 'enrollments' | 'enrollmentgroups' | 'registrations' | 'certificates';
const RESOURCES: readonly string[] = ['enrollments', 'enrollmentgroups', 'registrations', 'certificates'];

/** Path segments without the leading empty one and at most one trailing slash. */
function segmentsOf(pathname: string): string[] {
  const path = pathname.split('?')[0] ?? '';
  const segments = path.split('/').slice(1);
  if (segments.length > 1 && segments[segments.length - 1] === '') segments.pop();
  return segments;
}

/** True for the service API's paths only, so the device API (`/{idScope}/registrations/…`) goes elsewhere. */
export function isServiceApiPath(pathname: string): boolean {
  const [first] = segmentsOf(pathname);
  return first !== undefined && RESOURCES.includes(first.toLowerCase());
}

/** Maps method and path to an operation; throws 404, 405 or 400 (bad id). */
export function resolveRoute(method: string, pathname: string): Route {
  const segments = segmentsOf(pathname);
  const resource = segments[0]?.toLowerCase() as Resource | undefined;
  if (!resource || !RESOURCES.includes(resource) || segments.length > 3) throw Errors.notFound();
  const rawId = segments[1];
  const action = segments[2]?.toLowerCase();
  if (resource === 'registrations') return registrationRoute(method, rawId, action);
  if (resource === 'certificates') return certificateRoute(method, rawId, segments[2]);
  const group = resource === 'enrollmentgroups';
  const assertId = group ? assertEnrollmentGroupId : assertRegistrationId;
  const name = group ? 'EnrollmentGroup' : 'Enrollment';

  if (rawId === '') throw Errors.notFound();
  if (rawId === undefined) {
    return only(method, 'POST', { operation: group ? 'bulkEnrollmentGroups' : 'bulkEnrollments', right: 'EnrollmentWrite' });
  }
  if (action === undefined && rawId.toLowerCase() === 'query' && method === 'POST') {
    return { operation: group ? 'queryEnrollmentGroups' : 'queryEnrollments', right: 'EnrollmentRead' };
  }
  const id = assertId(decode(rawId));
  if (action === 'attestationmechanism') {
    // The attestation mechanism carries the symmetric keys that reads omit: a secret, so it needs write.
    return only(method, 'POST', { operation: `get${name}Attestation` as Operation, id, right: 'EnrollmentWrite' });
  }
  if (action !== undefined) throw Errors.notFound();
  switch (method) {
    case 'GET':
      return { operation: `get${name}` as Operation, id, right: 'EnrollmentRead' };
    case 'PUT':
      return { operation: `put${name}` as Operation, id, right: 'EnrollmentWrite' };
    case 'DELETE':
      return { operation: `delete${name}` as Operation, id, right: 'EnrollmentWrite' };
    default:
      throw Errors.methodNotAllowed(`${method} is not allowed here; use GET, PUT or DELETE.`);
  }
}

function registrationRoute(method: string, rawId: string | undefined, action: string | undefined): Route {
  if (rawId === undefined || rawId === '') throw Errors.notFound();
  if (action === 'query') {
    const id = assertEnrollmentGroupId(decode(rawId));
    return only(method, 'POST', { operation: 'queryRegistrations', id, right: 'RegistrationStatusRead' });
  }
  if (action !== undefined) throw Errors.notFound();
  const id = assertRegistrationId(decode(rawId));
  switch (method) {
    case 'GET':
      return { operation: 'getRegistration', id, right: 'RegistrationStatusRead' };
    case 'DELETE':
      return { operation: 'deleteRegistration', id, right: 'RegistrationStatusWrite' };
    default:
      throw Errors.methodNotAllowed(`${method} is not allowed here; use GET or DELETE.`);
  }
}

function only(method: string, allowed: string, route: Route): Route {
  if (method !== allowed) throw Errors.methodNotAllowed(`${method} is not allowed here; use ${allowed}.`);
  return route;
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw Errors.invalidRegistrationId('The id in the path is not URL-encoded correctly.');
  }
}
