import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { readJsonBody } from '@opendps/model';

/** The admin API takes small JSON bodies; past this it is refused (413). */
export const MAX_ADMIN_BODY_BYTES = 64 * 1024;

/** The parsed JSON body, or undefined when empty. */
export function readBody(req: IncomingMessage): Promise<unknown> {
  return readJsonBody(req, { maxBytes: MAX_ADMIN_BODY_BYTES });
}

export function sendJson(res: ServerResponse, status: number, body?: unknown): void {
  const payload = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(payload)),
    'x-ms-request-id': randomUUID(),
  });
  res.end(payload);
}
