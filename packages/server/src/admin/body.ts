import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { readJsonBody, writeJson } from '@opendps/model';

/** The admin API takes small JSON bodies; past this it is refused (413). */
export const MAX_ADMIN_BODY_BYTES = 64 * 1024;

/** The parsed JSON body, or undefined when empty. */
export function readBody(req: IncomingMessage): Promise<unknown> {
  return readJsonBody(req, { maxBytes: MAX_ADMIN_BODY_BYTES });
}

/** A JSON answer with its request id (and an etag or continuation token when given). */
export function sendJson(res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void {
  writeJson(res, status, body, { ...headers, 'x-ms-request-id': randomUUID() });
}
