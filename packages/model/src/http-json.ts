import type { ServerResponse } from 'node:http';

/**
 * Every JSON answer carries exactly this type: the Node SDKs (device, service, azure-iothub) parse a
 * body only when the type says JSON, and the device SDK throws otherwise (docs/device-wire.md, trap 6).
 */
export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/**
 * The one JSON writer of every HTTP surface. An undefined body is an empty one. A response already
 * under way cannot change its status, so it is cut (the client sees a failure, not a wrong answer);
 * one already ended is left alone, so the connection survives for the next request.
 */
export function writeJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.writableEnded || res.destroyed) return;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const payload = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'content-type': JSON_CONTENT_TYPE,
    'content-length': String(Buffer.byteLength(payload)),
  });
  res.end(payload);
}
