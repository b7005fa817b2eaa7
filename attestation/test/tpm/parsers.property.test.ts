import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { DpsError } from '@opendps/model';
import {
  decodeTpmKey,
  marshalTpm2bPublic,
  parseActivationBlob,
  parseTpm2bPublic,
  registrationIdFromEndorsementKey,
  storageKey,
} from '../../src/tpm';

/** Seeded, bounded: arbitrary bytes reach these parsers straight from device requests (docs/tpm.md). */
const RUNS = { seed: 1, numRuns: 500 };
const fixtures = join(__dirname, 'fixtures');
const EK = Buffer.from(readFileSync(join(fixtures, 'ek.tpm2b.hex'), 'utf8').trim(), 'hex');
const SRK = Buffer.from(readFileSync(join(fixtures, 'srk.tpm2b.hex'), 'utf8').trim(), 'hex');

/** Runs `work`; anything thrown must be the coded error. */
function onlyCoded(work: () => unknown): void {
  try {
    work();
  } catch (error) {
    if (!(error instanceof DpsError)) throw new Error(`threw ${String(error)} instead of a DpsError`);
  }
}

/** A valid key with a few bytes changed, cut short or extended. */
const mutatedKey = fc
  .tuple(fc.constantFrom(EK, SRK), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat(), fc.boolean())
  .map(([key, flips, cut, truncate]) => {
    const out = Buffer.from(key);
    for (const [at, value] of flips) out[at % out.length] = value;
    return truncate ? out.subarray(0, cut % out.length) : out;
  });

describe('TPM parsers on arbitrary input', () => {
  test('parseTpm2bPublic: arbitrary and mutated bytes give a key or a 400011, never another throw', () => {
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 1200 }).map((b) => Buffer.from(b)), mutatedKey), (bytes) => onlyCoded(() => parseTpm2bPublic(bytes))), RUNS);
  });

  test('storageKey and the registration id from an EK: only coded errors', () => {
    fc.assert(
      fc.property(mutatedKey, (bytes) => {
        onlyCoded(() => storageKey(bytes, 'The EK'));
        onlyCoded(() => registrationIdFromEndorsementKey(bytes.toString('base64')));
      }),
      RUNS,
    );
  });

  test('decodeTpmKey: any JSON value in tpm.endorsementKey gives a key or a coded error', () => {
    fc.assert(fc.property(fc.oneof(fc.jsonValue(), fc.string({ maxLength: 2000 }), fc.base64String({ maxLength: 1500 })), (value) => onlyCoded(() => decodeTpmKey(value, 'The EK'))), RUNS);
  });

  test('parseActivationBlob: arbitrary bytes give six fields or a coded error; six fields re-join to the blob', () => {
    const field = fc.uint8Array({ maxLength: 300 }).map((b) => {
      const size = Buffer.alloc(2);
      size.writeUInt16BE(b.length);
      return Buffer.concat([size, b]);
    });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 800 }), (bytes) => onlyCoded(() => parseActivationBlob(Buffer.from(bytes)))), RUNS);
    fc.assert(
      fc.property(fc.array(field, { minLength: 6, maxLength: 6 }), (fields) => {
        const parsed = parseActivationBlob(Buffer.concat(fields));
        expect(Buffer.concat(Object.values(parsed))).toEqual(Buffer.concat(fields));
      }),
      RUNS,
    );
  });

  test('valid keys round-trip byte for byte through parse and marshal', () => {
    for (const key of [EK, SRK]) expect(marshalTpm2bPublic(parseTpm2bPublic(key).public)).toEqual(key);
    expect(storageKey(EK, 'The EK').symmetricKeyBits).toBe(128);
  });
});
