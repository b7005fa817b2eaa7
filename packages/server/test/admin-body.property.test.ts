import fc from 'fast-check';
import { streamedRequest as request } from '../../../test/support/streamed-request';
import { DpsError } from '@opendps/model';
import { MAX_ADMIN_BODY_BYTES, readBody } from '../src/admin/body';

/** Seeded, bounded: the admin API reads its body before it looks at anything else. */
const RUNS = { seed: 1, numRuns: 200 };

describe('the admin API body reader on arbitrary requests', () => {
  test('JSON within the limit is parsed; anything else is a coded error (413 past the limit)', async () => {
    const body = fc.oneof(
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
      fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? '')),
      fc.constant(Buffer.alloc(MAX_ADMIN_BODY_BYTES + 1, 0x20)),
    );
    await fc.assert(
      fc.asyncProperty(body, fc.array(fc.nat(), { maxLength: 5 }), fc.constantFrom(undefined, 'application/json', 'text/plain', ''), async (bytes, cuts, type) => {
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const parts = [0, ...points].map((from, i) => bytes.subarray(from, [...points, bytes.length][i]));
        const outcome = await readBody(request(parts, type === undefined ? {} : { 'content-type': type })).then(
          (value) => ({ value }),
          (error: unknown) => ({ error }),
        );
        if ('error' in outcome) {
          expect(outcome.error).toBeInstanceOf(DpsError);
          if (bytes.length > MAX_ADMIN_BODY_BYTES) expect(outcome.error).toMatchObject({ status: 413 });
        } else {
          expect(bytes.length).toBeLessThanOrEqual(MAX_ADMIN_BODY_BYTES);
          const text = bytes.toString('utf8');
          expect(outcome.value).toEqual(text.trim() === '' ? undefined : JSON.parse(text));
        }
      }),
      RUNS,
    );
  });
});
