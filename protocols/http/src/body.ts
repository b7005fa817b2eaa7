import type { IncomingMessage } from 'node:http';
import { Errors } from '@opendps/model';

/** Device request bodies are small: a registration id, TPM public keys and a custom payload. */
export const DEFAULT_MAX_BODY_BYTES = 96 * 1024;

/** The client went away before its body was complete: there is no one left to answer. */
export class RequestAborted extends Error {
  constructor(cause?: Error) {
    super('The client aborted the request.', cause ? { cause } : undefined);
    this.name = 'RequestAborted';
  }
}

/**
 * Reads the whole body, refusing more than `maxBytes` (413). A declared Content-Length over the
 * limit is refused before reading anything.
 */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    return Promise.reject(Errors.payloadTooLarge(`The request body is ${declared} bytes; at most ${maxBytes} are accepted.`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    const onData = (chunk: Buffer): void => {
      length += chunk.length;
      if (length > maxBytes) {
        cleanup();
        reject(Errors.payloadTooLarge(`The request body exceeds ${maxBytes} bytes.`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks, length));
    };
    const onError = (error?: Error): void => {
      cleanup();
      reject(new RequestAborted(error));
    };
    const onAborted = (): void => onError();
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}
