import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { DpsError } from '@opendps/model';
import { readBody, RequestAborted } from '../src/body';
import { checkSameRegistration, decodeRegisterBody, type RegisterBody } from '@opendps/registration';

function deviceRegistrationBody(raw: Buffer, registrationId: string): RegisterBody {
  const body = decodeRegisterBody(raw);
  checkSameRegistration(registrationId, body.registrationId);
  return body;
}

/** Seeded, bounded: the device REST API reads these bodies before any authentication. */
const RUNS = { seed: 1, numRuns: 300 };
const MAX = 512;

/** A request stream delivering `chunks`, then ending (or failing as an aborted client does). */
function request(chunks: Buffer[], headers: Record<string, string>, abort: boolean): IncomingMessage {
  const req = Object.assign(new Readable({ read() {} }), { headers, complete: false });
  setImmediate(() => {
    for (const chunk of chunks) req.push(chunk);
    // As IncomingMessage does: 'aborted', and 'error' only when someone listens for it.
    if (abort) {
      req.emit('aborted');
      req.destroy(req.listenerCount('error') > 0 ? new Error('aborted') : undefined);
    }
    else {
      req.complete = true;
      req.push(null);
    }
  });
  return req as unknown as IncomingMessage;
}

const chunks = fc.array(fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)), { maxLength: 8 });
const contentLength = fc.option(fc.oneof(fc.nat({ max: 2000 }).map(String), fc.constantFrom('', '-1', '1e9', 'abc', '99999999999999999999', ' 10', '0x10')), { nil: undefined });

describe('readBody on arbitrary requests', () => {
  test('resolves with exactly the bytes sent within the limit, else 413, RequestAborted when cut short; nothing else', async () => {
    await fc.assert(
      fc.asyncProperty(chunks, contentLength, fc.boolean(), async (parts, declared, abort) => {
        const headers: Record<string, string> = declared === undefined ? {} : { 'content-length': declared };
        const total = parts.reduce((n, c) => n + c.length, 0);
        const outcome = await readBody(request(parts, headers, abort), MAX).then(
          (body) => ({ body }),
          (error: unknown) => ({ error }),
        );
        const declaredTooLarge = Number.isFinite(Number(declared)) && Number(declared) > MAX;
        if (declaredTooLarge || total > MAX) {
          expect(outcome).toEqual({ error: expect.objectContaining({ status: 413 }) });
          expect((outcome as { error: unknown }).error).toBeInstanceOf(DpsError);
        } else if (abort) expect((outcome as { error: unknown }).error).toBeInstanceOf(RequestAborted);
        else expect(outcome).toEqual({ body: Buffer.concat(parts) });
      }),
      RUNS,
    );
  });

  test('decodeRegisterBody: any bytes give a value or a coded error', () => {
    const json = fc.oneof(fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)), fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? '')));
    fc.assert(
      fc.property(json, fc.string({ maxLength: 20 }), (body, registrationId) => {
        try {
          deviceRegistrationBody(body, registrationId);
        } catch (error) {
          expect(error).toBeInstanceOf(DpsError);
        }
      }),
      { ...RUNS, numRuns: 1000 },
    );
  });

  test('a DeviceRegistration body round-trips', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z0-9-]{1,40}$/), fc.option(fc.jsonValue(), { nil: undefined }), (registrationId, payload) => {
        const sent = { registrationId, tpm: { endorsementKey: 'AAA=', storageRootKey: 'AAA=' }, ...(payload === undefined ? {} : { payload }) };
        expect(deviceRegistrationBody(Buffer.from(JSON.stringify(sent)), registrationId.toUpperCase())).toEqual(JSON.parse(JSON.stringify(sent)));
      }),
      RUNS,
    );
  });
});
