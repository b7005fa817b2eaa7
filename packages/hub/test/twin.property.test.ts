import fc from 'fast-check';
import { DpsError } from '@opendps/model';
import { assertSectionSize, mergePatch, validateSection } from '../src/twin';

/** Seeded, bounded: twin sections come from devices (MQTT reported patches) and the REST API. */
const RUNS = { seed: 1, numRuns: 500 };

/** Objects and arrays nested up to `depth` levels, then a leaf. */
function nested(depth: number, leaf: unknown): unknown {
  let value = leaf;
  for (let i = 0; i < depth; i++) value = i % 3 === 0 ? [value] : { k: value };
  return value;
}

const section = fc.oneof(
  fc.jsonValue({ maxDepth: 6 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 4 }), { maxKeys: 5 }),
  fc.tuple(fc.integer({ min: 0, max: 30_000 }), fc.constantFrom<unknown>(1, null, 'x', [], {})).map(([depth, leaf]) => ({ a: nested(depth, leaf) })),
);

describe('twin sections on arbitrary input', () => {
  test('validateSection, mergePatch and the size check give a section or a coded error, whatever the nesting', () => {
    fc.assert(
      fc.property(section, fc.boolean(), (value, allowNull) => {
        try {
          const checked = validateSection(value, 'reported properties', allowNull);
          const merged = mergePatch(checked, checked);
          assertSectionSize(merged, 'reported properties');
          JSON.stringify(merged);
        } catch (error) {
          if (!(error instanceof DpsError)) throw new Error(`threw ${String(error)} instead of a DpsError`);
        }
      }),
      RUNS,
    );
  });

  test('an array nested 20,000 deep is a 400 for its depth, not a stack overflow (a 500 on the hub REST API before; pnpm fuzz now counts 5xx answers)', () => {
    expect(() => validateSection({ a: nested(20_000, 1) }, 'tags', false)).toThrow(expect.objectContaining({ status: 400, message: expect.stringMatching(/nested deeper/) }));
    expect(() => validateSection({ a: [[[[[[[[[[[1]]]]]]]]]]] }, 'tags', false)).toThrow(DpsError);
    expect(validateSection({ a: [[[[[[[[1]]]]]]]] }, 'tags', false)).toEqual({ a: [[[[[[[[1]]]]]]]] });
  });
});
