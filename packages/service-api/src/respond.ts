import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { writeJson, type DpsError } from '@opendps/model';

/** What a handler answers; the writer below turns it into the HTTP response. */
export interface OperationResult {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export function sendResult(res: ServerResponse, result: OperationResult): void {
  const etag = etagOf(result.body);
  writeJson(res, result.status, result.body, {
    'x-ms-request-id': randomUUID(),
    ...(etag ? { etag } : {}),
    ...result.headers,
  });
}

/** The DPS error body, with `x-ms-error-code` and `x-ms-request-id` = trackingId (docs/service-rest.md §7). */
export function sendError(res: ServerResponse, error: DpsError, headers: Record<string, string> = {}): void {
  writeJson(res, error.status, error.toJSON(), {
    'x-ms-error-code': String(error.errorCode),
    'x-ms-request-id': error.trackingId,
    ...headers,
  });
}

function etagOf(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const etag = (body as { etag?: unknown }).etag;
  return typeof etag === 'string' ? etag : undefined;
}
