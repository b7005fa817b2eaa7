import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';

/**
 * A request whose body arrives in the given chunks on later turns, then ends: what an HTTP body
 * reader sees from a client that splits its body anywhere (the property tests of each reader).
 */
export function streamedRequest(chunks: Buffer[], headers: Record<string, string>): IncomingMessage {
  const req = Object.assign(new Readable({ read() {} }), { headers, complete: false });
  setImmediate(() => {
    for (const chunk of chunks) req.push(chunk);
    req.complete = true;
    req.push(null);
  });
  return req as unknown as IncomingMessage;
}
