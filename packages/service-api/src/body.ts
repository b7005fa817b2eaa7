import type { IncomingMessage } from 'node:http';
import { Errors, parseJson } from '@opendps/model';

/** DPS's maximum message size (docs/service-rest.md §15). */
export const MAX_BODY_BYTES = 96 * 1024;
/** Past this much an oversized body is no longer drained politely: the connection is cut. */
const DRAIN_LIMIT_BYTES = 8 * 1024 * 1024;

/**
 * Reads and parses the JSON body; undefined when there is none (Node's attestationmechanism POST
 * sends no body and no content type). An oversized body is drained before answering 413 so the
 * client reads the error instead of a reset connection.
 */
export async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const text = await readText(req);
  if (text.trim() === '') return undefined;
  const contentType = req.headers['content-type'];
  if (contentType !== undefined && !isJson(contentType)) {
    throw Errors.unsupportedMediaType(`Content type '${contentType}' is not supported; send application/json.`);
  }
  return parseJson(text);
}

function isJson(contentType: string): boolean {
  const mediaType = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  return mediaType === 'application/json' || mediaType.endsWith('+json');
}

function readText(req: IncomingMessage): Promise<string> {
  const declared = Number(req.headers['content-length']);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = Number.isFinite(declared) && declared > MAX_BODY_BYTES;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      if (tooLarge) {
        chunks.length = 0;
        if (size > DRAIN_LIMIT_BYTES) req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (tooLarge) reject(Errors.payloadTooLarge(`The request body exceeds ${MAX_BODY_BYTES} bytes.`));
      else resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', reject);
    req.on('close', () => {
      if (!req.complete) reject(Errors.invalidField('The request body was cut short.'));
    });
  });
}
