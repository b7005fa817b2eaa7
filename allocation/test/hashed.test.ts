import { chooseHashed, rendezvousScore } from '../src';
import { hub } from './helpers';

const DEVICES = 10_000;
const TOLERANCE_PP = 1.5;
const ids = Array.from({ length: DEVICES }, (_, i) => `device-${i}`);

function percent(count: number): number {
  return (100 * count) / DEVICES;
}

describe('hashed allocation (weighted rendezvous)', () => {
  const a = hub('hub-a', 1);
  const b = hub('hub-b', 2);
  const c = hub('hub-c', 7);
  const d = hub('hub-d', 2);

  it('spreads 10,000 devices 10/20/70 % over weights 1:2:7, moves only its share onto a new hub, only the removed hub\'s devices on removal', () => {
    const before = new Map(ids.map((id) => [id, chooseHashed([a, b, c], id).name]));
    const counts = { 'hub-a': 0, 'hub-b': 0, 'hub-c': 0 } as Record<string, number>;
    for (const name of before.values()) counts[name] = (counts[name] ?? 0) + 1;
    const shares = Object.fromEntries(Object.entries(counts).map(([name, count]) => [name, percent(count)]));

    // A fourth hub of weight 2 should take 2/12 = 16.67 % and nothing else may move.
    const after = new Map(ids.map((id) => [id, chooseHashed([a, b, c, d], id).name]));
    const moved = ids.filter((id) => after.get(id) !== before.get(id));
    const movedElsewhere = moved.filter((id) => after.get(id) !== 'hub-d');
    const expectedNewShare = (100 * 2) / 12;

    // Removing hub-b: exactly its devices move, and they spread over the rest.
    const withoutB = new Map(ids.map((id) => [id, chooseHashed([a, c], id).name]));
    const movedOnRemoval = ids.filter((id) => withoutB.get(id) !== before.get(id));
    const movedNotFromB = movedOnRemoval.filter((id) => before.get(id) !== 'hub-b');

    console.log(
      [
        `hashed distribution over ${DEVICES} ids, weights 1:2:7 (expected 10/20/70 %, tolerance ±${TOLERANCE_PP} pp):`,
        `  hub-a ${shares['hub-a']?.toFixed(2)} %, hub-b ${shares['hub-b']?.toFixed(2)} %, hub-c ${shares['hub-c']?.toFixed(2)} %`,
        `adding hub-d (weight 2, share ${expectedNewShare.toFixed(2)} %): moved ${percent(moved.length).toFixed(2)} % ` +
          `(${moved.length} devices), ${movedElsewhere.length} moved anywhere but hub-d`,
        `removing hub-b (${counts['hub-b']} devices): moved ${movedOnRemoval.length}, ${movedNotFromB.length} of them not from hub-b`,
      ].join('\n'),
    );

    expect(Math.abs((shares['hub-a'] ?? 0) - 10)).toBeLessThanOrEqual(TOLERANCE_PP);
    expect(Math.abs((shares['hub-b'] ?? 0) - 20)).toBeLessThanOrEqual(TOLERANCE_PP);
    expect(Math.abs((shares['hub-c'] ?? 0) - 70)).toBeLessThanOrEqual(TOLERANCE_PP);

    expect(movedElsewhere).toEqual([]);
    expect(percent(moved.length)).toBeLessThanOrEqual(expectedNewShare + TOLERANCE_PP);
    expect(percent(moved.length)).toBeGreaterThanOrEqual(expectedNewShare - TOLERANCE_PP);

    expect(movedNotFromB).toEqual([]);
    expect(movedOnRemoval.length).toBe(counts['hub-b']);
  });

  it('is stable: the same id gets the same hub on every evaluation, whatever the candidate order or id case', () => {
    for (const id of ids.slice(0, 2000)) {
      const first = chooseHashed([a, b, c], id);
      expect(chooseHashed([c, a, b], id)).toBe(first);
      expect(chooseHashed([b, c, a], id.toUpperCase())).toBe(first);
    }
  });

  it('keeps the assignments made by the first registration service (formula pinned by vectors taken from it)', () => {
    // Produced by packages/registration chooseHub (hub-a/b/c weighted 1:2:7) before this package replaced it.
    const vectors: Array<[string, string]> = [
      ['dev-1', 'hub-c'],
      ['Dev-2', 'hub-b'],
      ['sensor-042', 'hub-c'],
      ['breakroom499-contoso-tstrsd-007', 'hub-c'],
      ['a', 'hub-c'],
      ['ZZZ.top_9', 'hub-a'],
      ['device-11', 'hub-b'],
      ['device-12', 'hub-b'],
      ['device-13', 'hub-c'],
    ];
    for (const [id, expected] of vectors) expect([id, chooseHashed([a, b, c], id).name]).toEqual([id, expected]);
  });

  it('scores higher with a higher weight for the same hub name, and treats an unusable weight as 1', () => {
    expect(rendezvousScore('x', hub('h', 5))).toBeGreaterThan(rendezvousScore('x', hub('h', 1)));
    expect(rendezvousScore('x', hub('h', 0))).toBe(rendezvousScore('x', hub('h', 1)));
    expect(rendezvousScore('x', hub('h', Number.NaN))).toBe(rendezvousScore('x', hub('h', 1)));
  });

  it('refuses an empty candidate list with 400208', () => {
    expect(() => chooseHashed([], 'x')).toThrow(expect.objectContaining({ errorCode: 400208 }));
  });
});
