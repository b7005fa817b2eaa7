import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { Errors, parseJson } from '@opendps/model';

/** The admin API takes small JSON bodies; past this it is refused (413). */
export const MAX_ADMIN_BODY_BYTES = 64 * 1024;

/** The parsed JSON body, or undefined when empty. */
export async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_ADMIN_BODY_BYTES) throw Errors.payloadTooLarge(`The request body exceeds ${MAX_ADMIN_BODY_BYTES} bytes.`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return undefined;
  const contentType = req.headers['content-type'];
  if (contentType !== undefined && !/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(contentType)) {
    throw Errors.unsupportedMediaType(`Content type '${contentType}' is not supported; send application/json.`);
  }
  return parseJson(text);
}

export function sendJson(res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void {
  const payload = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(payload)),
    'x-ms-request-id': randomUUID(),
  });
  res.end(payload);
}
