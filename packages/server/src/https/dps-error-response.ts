import type { ServerResponse } from 'node:http';
import type { DpsError } from '@opendps/model';

/** The DPS error body with its headers (docs/service-rest.md §7): JSON content type, x-ms-error-code, request id. */
export function sendDpsError(res: ServerResponse, error: DpsError): void {
  const body = JSON.stringify(error.toJSON());
  res.writeHead(error.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'x-ms-error-code': String(error.errorCode),
    'x-ms-request-id': error.trackingId,
  });
  res.end(body);
}
