import type { IncomingMessage } from 'node:http';
import { Errors, parseJson } from '@opendps/model';

/** Two 32 KB twin sections, tags and JSON overhead fit well within this. */
export const MAX_BODY_BYTES = 256 * 1024;

/**
 * Reads and parses a JSON request body; undefined when there is none. An oversized body is cut off
 * (413), a body that is not JSON is 400/415: never a crash.
 */
export function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > MAX_BODY_BYTES) {
    return Promise.reject(Errors.payloadTooLarge(`The request body exceeds ${MAX_BODY_BYTES} bytes.`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    const fail = (error: unknown): void => {
      if (failed) return;
      failed = true;
      reject(error);
    };
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        chunks.length = 0;
        fail(Errors.payloadTooLarge(`The request body exceeds ${MAX_BODY_BYTES} bytes.`));
        return;
      }
      if (!failed) chunks.push(chunk);
    });
    req.on('end', () => {
      if (failed) return;
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') return resolve(undefined);
      const contentType = req.headers['content-type'];
      const mediaType = contentType?.split(';')[0]?.trim().toLowerCase();
      if (mediaType !== undefined && mediaType !== 'application/json') {
        return fail(Errors.unsupportedMediaType(`Content type '${contentType}' is not supported; send application/json.`));
      }
      try {
        resolve(parseJson(text));
      } catch (error) {
        fail(error);
      }
    });
    req.on('error', fail);
    req.on('close', () => {
      if (!req.complete) fail(Errors.invalidField('The request body was cut short.'));
    });
  });
}
