import fc from 'fast-check';
import { DpsError } from '@opendps/model';
import { createSasToken, parseSasToken, verifySasToken } from '../src/sas';

/** Seeded, bounded: a SAS token is the first thing every device and operator request carries. */
const RUNS = { seed: 1, numRuns: 500 };
const NOW = new Date('2026-12-01T00:00:00Z');
const key = fc.uint8Array({ minLength: 16, maxLength: 64 }).map((b) => Buffer.from(b).toString('base64'));

function onlyCoded(work: () => unknown): void {
  try {
    work();
  } catch (error) {
    if (!(error instanceof DpsError)) throw new Error(`threw ${String(error)} instead of a DpsError`);
  }
}

/** Token-shaped strings: the prefix, then `&`-joined fields with arbitrary names and values. */
const tokenLike = fc
  .array(fc.tuple(fc.constantFrom('sr', 'sig', 'se', 'skn', 'x', ''), fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom('%', '%E0%A4%A', '1796517000', '9'.repeat(20)))), { maxLength: 8 })
  .map((fields) => `SharedAccessSignature ${fields.map(([k, v]) => `${k}=${v}`).join('&')}`);

describe('SAS tokens on arbitrary input', () => {
  test('parseSasToken: any value gives a token or a coded error', () => {
    fc.assert(fc.property(fc.oneof(fc.anything(), fc.string({ maxLength: 300 }), tokenLike), (value) => onlyCoded(() => parseSasToken(value))), RUNS);
  });

  test('verifySasToken: any parsed token against any keys and resource gives a key index or a coded error', () => {
    fc.assert(
      fc.property(tokenLike, fc.array(fc.oneof(key, fc.string({ maxLength: 20 })), { maxLength: 3 }), fc.string({ maxLength: 60 }), fc.boolean(), (text, keys, resource, prefixMatch) => {
        let token;
        try {
          token = parseSasToken(text);
        } catch {
          return;
        }
        onlyCoded(() => verifySasToken(token, { expectedResource: resource, keys, now: NOW, prefixMatch }));
      }),
      RUNS,
    );
  });

  test('a token created for a resource verifies with its key in any field order, encoded or raw sr', () => {
    fc.assert(
      fc.property(key, key, fc.stringMatching(/^[a-z0-9]{1,12}\/registrations\/[a-z0-9.:_-]{1,40}$/), fc.boolean(), fc.boolean(), (right, wrong, resource, encodeResource, reversed) => {
        fc.pre(right !== wrong);
        const created = createSasToken({ resource, key: right, keyName: 'registration', expiry: NOW.getTime() / 1000 + 60, encodeResource });
        const fields = created.slice('SharedAccessSignature '.length).split('&');
        const token = parseSasToken(`SharedAccessSignature ${(reversed ? fields.reverse() : fields).join('&')}`);
        expect(verifySasToken(token, { expectedResource: resource, keys: [wrong, right], now: NOW })).toBe(1);
        expect(() => verifySasToken(token, { expectedResource: resource, keys: [wrong], now: NOW })).toThrow(DpsError);
      }),
      RUNS,
    );
  });
});
