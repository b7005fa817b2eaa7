import type { ServerResponse } from 'node:http';
import { writeJson, type DpsError } from '@opendps/model';

/** The DPS error body with its headers (docs/service-rest.md §7): JSON content type, x-ms-error-code, request id. */
export function sendDpsError(res: ServerResponse, error: DpsError): void {
  writeJson(res, error.status, error.toJSON(), { 'x-ms-error-code': String(error.errorCode), 'x-ms-request-id': error.trackingId });
}
