import { DpsError } from '@opendps/model';
import { isServiceApiPath, resolveRoute } from '../src/routes';

function refusal(method: string, path: string): number | undefined {
  try {
    resolveRoute(method, path);
    return undefined;
  } catch (error) {
    return (error as DpsError).errorCode;
  }
}

describe('isServiceApiPath', () => {
  it('claims only the service API, in any case', () => {
    expect(isServiceApiPath('/enrollments/dev-1')).toBe(true);
    expect(isServiceApiPath('/EnrollmentGroups/g/attestationmechanism')).toBe(true);
    expect(isServiceApiPath('/enrollments/')).toBe(true);
    expect(isServiceApiPath('/registrations/dev-1?api-version=1')).toBe(true);
    expect(isServiceApiPath('/0ne0000000A/registrations/dev-1/register')).toBe(false);
    expect(isServiceApiPath('/$iothub/websocket')).toBe(false);
    expect(isServiceApiPath('/')).toBe(false);
    expect(isServiceApiPath('/enrollmentsX')).toBe(false);
  });
});

describe('resolveRoute', () => {
  it('maps each documented call to its operation and right', () => {
    expect(resolveRoute('GET', '/enrollments/dev-1')).toEqual({ operation: 'getEnrollment', id: 'dev-1', right: 'EnrollmentRead' });
    expect(resolveRoute('PUT', '/enrollmentGroups/grp%201x'.replace('%201x', '%2D1'))).toEqual({
      operation: 'putEnrollmentGroup', id: 'grp-1', right: 'EnrollmentWrite',
    });
    expect(resolveRoute('POST', '/enrollmentgroups/g1/attestationmechanism').operation).toBe('getEnrollmentGroupAttestation');
    expect(resolveRoute('POST', '/enrollments/').operation).toBe('bulkEnrollments');
    expect(resolveRoute('POST', '/enrollments').operation).toBe('bulkEnrollments');
    expect(resolveRoute('POST', '/Enrollments/Query').operation).toBe('queryEnrollments');
    expect(resolveRoute('GET', '/enrollments/query')).toMatchObject({ operation: 'getEnrollment', id: 'query' });
    expect(resolveRoute('POST', '/registrations/grp-1/query')).toEqual({
      operation: 'queryRegistrations', id: 'grp-1', right: 'RegistrationStatusRead',
    });
    expect(resolveRoute('DELETE', '/registrations/dev-1').right).toBe('RegistrationStatusWrite');
  });

  it('refuses unknown paths (404), wrong methods (405) and bad ids (400)', () => {
    expect(refusal('GET', '/enrollments/a/b')).toBe(404001);
    expect(refusal('GET', '/enrollments/a/b/c/d')).toBe(404001);
    expect(refusal('GET', '/registrations')).toBe(404001);
    expect(refusal('POST', '/enrollments/dev-1')).toBe(405001);
    expect(refusal('GET', '/enrollments/')).toBe(405001);
    expect(refusal('PUT', '/registrations/dev-1')).toBe(405001);
    expect(refusal('GET', '/enrollments/-dev')).toBe(400003);
    expect(refusal('GET', '/enrollments/a%ZZ')).toBe(400003);
    expect(refusal('GET', '/enrollmentGroups/grp%201')).toBe(400004);
    expect(refusal('POST', '/registrations/bad%2Fid/query')).toBe(400004);
  });
});
