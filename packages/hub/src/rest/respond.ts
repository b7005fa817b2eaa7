import type { ServerResponse } from 'node:http';

/** azure-iot-http-base JSON-parses a response only when its content type says JSON: always send it. */
export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

export function writeJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
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
