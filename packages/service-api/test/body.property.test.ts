import fc from 'fast-check';
import { streamedRequest as request } from '../../../test/support/streamed-request';
import { DpsError } from '@opendps/model';
import { MAX_BODY_BYTES, readJsonBody } from '../src/body';

/** Seeded, bounded: every service API write reads its body here (docs/service-rest.md). */
const RUNS = { seed: 1, numRuns: 200 };

describe('the service API body reader on arbitrary requests', () => {
  test('JSON within the limit is parsed; anything else is a coded error (413 past the limit, declared or sent)', async () => {
    const body = fc.oneof(
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
      fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? '')),
      fc.constant(Buffer.alloc(MAX_BODY_BYTES + 1, 0x20)),
    );
    const contentType = fc.constantFrom(undefined, 'application/json', 'application/merge-patch+json', 'text/plain', '');
    const declared = fc.option(fc.constantFrom('0', '10', String(MAX_BODY_BYTES + 1), '1e9', 'x', '-1'), { nil: undefined });
    await fc.assert(
      fc.asyncProperty(body, fc.array(fc.nat(), { maxLength: 5 }), contentType, declared, async (bytes, cuts, type, length) => {
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const parts = [0, ...points].map((from, i) => bytes.subarray(from, [...points, bytes.length][i]));
        const headers: Record<string, string> = { ...(type === undefined ? {} : { 'content-type': type }), ...(length === undefined ? {} : { 'content-length': length }) };
        const outcome = await readJsonBody(request(parts, headers)).then(
          (value) => ({ value }),
          (error: unknown) => ({ error }),
        );
        const tooLarge = bytes.length > MAX_BODY_BYTES || Number(length) > MAX_BODY_BYTES;
        if ('error' in outcome) {
          expect(outcome.error).toBeInstanceOf(DpsError);
          if (tooLarge) expect(outcome.error).toMatchObject({ status: 413 });
        } else {
          expect(tooLarge).toBe(false);
          const text = bytes.toString('utf8');
          expect(outcome.value).toEqual(text.trim() === '' ? undefined : JSON.parse(text));
        }
      }),
      RUNS,
    );
  });
});
