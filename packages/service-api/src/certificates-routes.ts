import { Errors, type AccessRight } from '@opendps/model';

/**
 * Routes of the CA certificate admin API, shaped like Azure's ARM `certificates` API of a
 * provisioning service (create/get/list/delete, generateVerificationCode, verify) but mounted at
 * `/certificates` on the service listener. Every operation needs the ServiceConfig right.
 */
export type CertificateOperation =
  | 'listCertificates'
  | 'getCertificate'
  | 'putCertificate'
  | 'deleteCertificate'
  | 'generateVerificationCode'
  | 'verifyCertificate';

export interface CertificateRoute {
  operation: CertificateOperation;
  id?: string;
  right: AccessRight;
}

/** Names as ARM allows them: letters, digits, `.`, `_`, `-`, at most 64 characters. */
const NAME = /^[A-Za-z0-9._-]{1,64}$/;
const RIGHT: AccessRight = 'ServiceConfig';

/** `rawName` and `action` are the path segments after `certificates` (undefined when absent). */
export function certificateRoute(method: string, rawName: string | undefined, action: string | undefined): CertificateRoute {
  if (rawName === undefined) return only(method, 'GET', { operation: 'listCertificates', right: RIGHT });
  if (rawName === '') throw Errors.notFound();
  const id = assertCertificateName(decode(rawName));
  switch (action?.toLowerCase()) {
    case undefined:
      break;
    case 'generateverificationcode':
      return only(method, 'POST', { operation: 'generateVerificationCode', id, right: RIGHT });
    case 'verify':
      return only(method, 'POST', { operation: 'verifyCertificate', id, right: RIGHT });
    default:
      throw Errors.notFound();
  }
  switch (method) {
    case 'GET':
      return { operation: 'getCertificate', id, right: RIGHT };
    case 'PUT':
      return { operation: 'putCertificate', id, right: RIGHT };
    case 'DELETE':
      return { operation: 'deleteCertificate', id, right: RIGHT };
    default:
      throw Errors.methodNotAllowed(`${method} is not allowed here; use GET, PUT or DELETE.`);
  }
}

export function assertCertificateName(name: string): string {
  if (!NAME.test(name)) {
    throw Errors.invalidField(`'${name}' is not a valid certificate name (letters, digits, '.', '_', '-'; at most 64).`);
  }
  return name;
}

function only(method: string, allowed: string, route: CertificateRoute): CertificateRoute {
  if (method !== allowed) throw Errors.methodNotAllowed(`${method} is not allowed here; use ${allowed}.`);
  return route;
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw Errors.invalidField('The certificate name in the path is not URL-encoded correctly.');
  }
}
