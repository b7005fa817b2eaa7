import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { DpsError, readBody, readJsonBody, RequestAborted } from '../src';
import { streamedRequest } from '../../../test/support/streamed-request';

/** Seeded, bounded: every HTTP surface (device, service, admin, hub REST) reads its body here, before authentication. */
const RUNS = { seed: 1, numRuns: 300 };
const LIMITS = { maxBytes: 512, drainBytes: 1024 };

/** A request stream delivering `chunks`, then ending, or failing as an aborted client does. */
function request(chunks: Buffer[], headers: Record<string, string>, abort: boolean): IncomingMessage {
  const req = Object.assign(new Readable({ read() {} }), { headers, complete: false });
  setImmediate(() => {
    for (const chunk of chunks) req.push(chunk);
    // As IncomingMessage does: 'aborted', and 'error' only when someone listens for it.
    if (abort) {
      req.emit('aborted');
      req.destroy(req.listenerCount('error') > 0 ? new Error('aborted') : undefined);
    } else {
      req.complete = true;
      req.push(null);
    }
  });
  return req as unknown as IncomingMessage;
}

const chunks = fc.array(fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)), { maxLength: 8 });
const contentLength = fc.option(fc.oneof(fc.nat({ max: 2000 }).map(String), fc.constantFrom('', '-1', '1e9', 'abc', '99999999999999999999', ' 10', '0x10')), { nil: undefined });

describe('readBody on arbitrary requests', () => {
  test('exactly the bytes sent within the limit; 413 past it (declared or sent); RequestAborted when cut short; nothing else', async () => {
    await fc.assert(
      fc.asyncProperty(chunks, contentLength, fc.boolean(), async (parts, declared, abort) => {
        const headers: Record<string, string> = declared === undefined ? {} : { 'content-length': declared };
        const total = parts.reduce((n, c) => n + c.length, 0);
        const outcome = await readBody(request(parts, headers, abort), LIMITS).then(
          (body) => ({ body }),
          (error: unknown) => ({ error }),
        );
        const declaredBytes = Number(declared);
        const declaredValid = declared !== undefined && Number.isFinite(declaredBytes);
        // Past the drain limit the answer is 413 at once; below it an oversized body is read to its end first.
        if ((declaredValid && declaredBytes > LIMITS.drainBytes) || total > LIMITS.drainBytes) {
          expect((outcome as { error: DpsError }).error).toMatchObject({ status: 413 });
        } else if (abort) {
          expect((outcome as { error: unknown }).error).toBeInstanceOf(RequestAborted);
        } else if ((declaredValid && declaredBytes > LIMITS.maxBytes) || total > LIMITS.maxBytes) {
          expect((outcome as { error: DpsError }).error).toMatchObject({ status: 413, errorCode: 413001 });
        } else {
          expect(outcome).toEqual({ body: Buffer.concat(parts) });
        }
        if ('error' in outcome) expect(outcome.error).toBeInstanceOf(DpsError);
      }),
      RUNS,
    );
  });
});

describe('readJsonBody on arbitrary requests', () => {
  test('JSON within the limit is parsed, nothing is undefined; anything else is a coded error', async () => {
    const body = fc.oneof(
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
      fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? '')),
      fc.constant(Buffer.alloc(LIMITS.maxBytes + 1, 0x20)),
    );
    const contentType = fc.constantFrom(undefined, 'application/json', 'application/json; charset=utf-8', 'application/merge-patch+json', 'text/plain', 'text/x+json', '');
    await fc.assert(
      fc.asyncProperty(body, fc.array(fc.nat(), { maxLength: 5 }), contentType, async (bytes, cuts, type) => {
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const parts = [0, ...points].map((from, i) => bytes.subarray(from, [...points, bytes.length][i]));
        const outcome = await readJsonBody(streamedRequest(parts, type === undefined ? {} : { 'content-type': type }), LIMITS).then(
          (value) => ({ value }),
          (error: unknown) => ({ error }),
        );
        if ('error' in outcome) {
          expect(outcome.error).toBeInstanceOf(DpsError);
          if (bytes.length > LIMITS.maxBytes) expect(outcome.error).toMatchObject({ status: 413 });
          return;
        }
        expect(bytes.length).toBeLessThanOrEqual(LIMITS.maxBytes);
        const text = bytes.toString('utf8');
        if (text.trim() === '') return expect(outcome.value).toBeUndefined();
        expect(type === undefined || /^application\/(json|merge-patch\+json)/.test(type)).toBe(true);
        expect(outcome.value).toEqual(JSON.parse(text));
      }),
      RUNS,
    );
  });
});
