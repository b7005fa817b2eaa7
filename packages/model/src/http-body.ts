import type { IncomingMessage } from 'node:http';
import { DpsError, Errors } from './errors';
import { parseJson } from './validation';

/**
 * The one HTTP body reader, for every HTTP surface: the device API, the service API, the admin API
 * and the built-in hub's REST API. Each passes its own limit (docs/service-rest.md §15).
 */
export interface BodyLimits {
  /** Past this many bytes the request is refused: 413. */
  maxBytes: number;
  /**
   * An oversized body is read and dropped up to this many bytes before the 413 is sent, so that the
   * client reads the answer instead of a reset connection; past it the connection is cut. Default 8 MiB.
   */
  drainBytes?: number;
}

const DEFAULT_DRAIN_BYTES = 8 * 1024 * 1024;

/**
 * The client went away before its body was complete: there is no one left to answer. A 400 like any
 * refusal, so every surface logs it as one; the device API does not even try to answer.
 */
export class RequestAborted extends DpsError {
  constructor(cause?: Error) {
    super(400, 400002, 'The request body was cut short: the client aborted the request.');
    if (cause) this.cause = cause;
    this.name = 'RequestAborted';
  }
}

/** The whole body. Rejects with a coded 413 past `maxBytes`, or RequestAborted when the client leaves. */
export function readBody(req: IncomingMessage, limits: BodyLimits): Promise<Buffer> {
  const { maxBytes } = limits;
  const drainBytes = Math.max(limits.drainBytes ?? DEFAULT_DRAIN_BYTES, maxBytes);
  const tooLarge = () => Errors.payloadTooLarge(`The request body exceeds ${maxBytes} bytes.`);
  const declared = Number(req.headers['content-length']);
  // Nothing is read of a body declared past what would be drained anyway.
  if (Number.isFinite(declared) && declared > drainBytes) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    let oversized = Number.isFinite(declared) && declared > maxBytes;
    const settle = (outcome: () => void): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      outcome();
    };
    const onData = (chunk: Buffer): void => {
      length += chunk.length;
      if (length > maxBytes) oversized = true;
      if (!oversized) return void chunks.push(chunk);
      chunks.length = 0;
      if (length > drainBytes) {
        settle(() => reject(tooLarge()));
        req.destroy();
      }
    };
    const onEnd = (): void => settle(() => (oversized ? reject(tooLarge()) : resolve(Buffer.concat(chunks, length))));
    const onError = (error?: Error): void => settle(() => reject(new RequestAborted(error)));
    const onClose = (): void => {
      if (!req.complete) onError();
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

/**
 * The parsed JSON body, or undefined when there is none (the Node service SDK sends some POSTs with
 * no body and no content type). A body in another media type is 415; JSON that does not parse, 400.
 */
export async function readJsonBody(req: IncomingMessage, limits: BodyLimits): Promise<unknown> {
  const text = (await readBody(req, limits)).toString('utf8');
  if (text.trim() === '') return undefined;
  const contentType = req.headers['content-type'];
  if (contentType !== undefined && !isJsonMediaType(contentType)) {
    throw Errors.unsupportedMediaType(`Content type '${contentType}' is not supported; send application/json.`);
  }
  return parseJson(text);
}

/** `application/json` or any `+json` type (`application/merge-patch+json`), parameters aside. */
export function isJsonMediaType(contentType: string): boolean {
  const mediaType = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  return mediaType === 'application/json' || (mediaType.startsWith('application/') && mediaType.endsWith('+json'));
}
