import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { DpsError } from '@opendps/model';

/** Node's service SDK JSON-parses a response only when its content type says JSON (docs/service-rest.md §9): always send it. */
export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/** What a handler answers; the writer below turns it into the HTTP response. */
export interface OperationResult {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export function sendResult(res: ServerResponse, result: OperationResult): void {
  const etag = etagOf(result.body);
  write(res, result.status, result.body, {
    'x-ms-request-id': randomUUID(),
    ...(etag ? { etag } : {}),
    ...result.headers,
  });
}

/** The DPS error body, with `x-ms-error-code` and `x-ms-request-id` = trackingId (docs/service-rest.md §7). */
export function sendError(res: ServerResponse, error: DpsError, headers: Record<string, string> = {}): void {
  write(res, error.status, error.toJSON(), {
    'x-ms-error-code': String(error.errorCode),
    'x-ms-request-id': error.trackingId,
    ...headers,
  });
}

function write(res: ServerResponse, status: number, body: unknown, headers: Record<string, string>): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const payload = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': JSON_CONTENT_TYPE,
    'content-length': String(Buffer.byteLength(payload)),
    ...headers,
  });
  res.end(payload);
}

function etagOf(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const etag = (body as { etag?: unknown }).etag;
  return typeof etag === 'string' ? etag : undefined;
}
