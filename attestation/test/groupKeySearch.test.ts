import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { GroupKeySearch } from '../src/groupKeySearch';
import { createSasToken, deriveDeviceKey, parseSasToken } from '../src/sas';
import { hmacFromStates, hmacKeyStates, paddedBlocks } from '../src/sha256';

const RUNS = { seed: 7, numRuns: 300 };
/** Keys as operators give them: base64 of 16 to 64 bytes, and longer ones (hashed first by HMAC). */
const keyBytes = fc.uint8Array({ minLength: 1, maxLength: 100 });
const key = keyBytes.map((bytes) => Buffer.from(bytes).toString('base64'));
/** DPS registration ids: up to 128 of a-z, 0-9, `-._:` (docs/service-rest.md §14); long ones span several blocks. */
const registrationId = fc.stringMatching(/^[a-z0-9.\-_:]{1,128}$/);

function tokenFor(deviceKey: string, id: string, expiry: number): ReturnType<typeof parseSasToken> {
  return parseSasToken(createSasToken({ resource: `0ne00000001/registrations/${id}`, key: deviceKey, keyName: 'registration', expiry }));
}

describe('HMAC-SHA256 from key states', () => {
  test('equals node:crypto for any key of up to one block and any message', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 300 }), (keyValue, message) => {
        const states = new Int32Array(16);
        hmacKeyStates(keyValue, states, 0);
        const out = new Int32Array(8);
        hmacFromStates(states, 0, paddedBlocks(message, 64), out, 0);
        const digest = Buffer.alloc(32);
        out.forEach((word, i) => digest.writeInt32BE(word, i * 4));
        expect(digest.equals(createHmac('sha256', keyValue).update(message).digest())).toBe(true);
      }),
      RUNS,
    );
  });
});

describe('GroupKeySearch', () => {
  test('finds exactly the groups whose primary or secondary key derives the signing key, primaries first', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(key, key), { minLength: 1, maxLength: 8 }),
        fc.nat(),
        fc.boolean(),
        registrationId,
        fc.integer({ min: 0, max: 2 ** 36 }),
        (keys, pick, secondary, id, expiry) => {
          const groups = keys.map(([primaryKey, secondaryKey], i) => ({ enrollmentGroupId: `g-${i}`, primaryKey, secondaryKey }));
          const chosen = groups[pick % groups.length]!;
          const signingKey = deriveDeviceKey(secondary ? chosen.secondaryKey : chosen.primaryKey, id);
          const found = [...new GroupKeySearch(groups).candidates(tokenFor(signingKey, id, expiry), id)];
          // The reference: node:crypto over every key, primaries in order, then secondaries that differ.
          const derives = (groupKey: string) => deriveDeviceKey(groupKey, id) === signingKey;
          const expected = [
            ...groups.filter((g) => derives(g.primaryKey)).map((g) => g.enrollmentGroupId),
            ...groups.filter((g) => Buffer.compare(Buffer.from(g.secondaryKey, 'base64'), Buffer.from(g.primaryKey, 'base64')) !== 0 && derives(g.secondaryKey)).map((g) => g.enrollmentGroupId),
          ];
          expect(found).toEqual(expected);
          expect(found).toContain(chosen.enrollmentGroupId);
        },
      ),
      RUNS,
    );
  });

  test('a key derived from no group, or a signature that is not canonical base64 of 32 bytes, finds nothing', () => {
    const groups = [{ enrollmentGroupId: 'g', primaryKey: Buffer.alloc(32, 1).toString('base64'), secondaryKey: Buffer.alloc(32, 2).toString('base64') }];
    const search = new GroupKeySearch(groups);
    const stranger = tokenFor(deriveDeviceKey(Buffer.alloc(32, 3).toString('base64'), 'dev'), 'dev', 1e9);
    expect([...search.candidates(stranger, 'dev')]).toEqual([]);
    const good = tokenFor(deriveDeviceKey(groups[0]!.primaryKey, 'dev'), 'dev', 1e9);
    expect([...search.candidates(good, 'dev')]).toEqual(['g']);
    for (const signature of [good.signature.replace(/=$/, ''), good.signature.replace(/\+/g, '-'), '', 'AAAA', `${good.signature}AAAA`]) {
      if (signature === good.signature) continue;
      expect([...search.candidates({ ...good, signature }, 'dev')]).toEqual([]);
    }
    expect([...search.candidates(good, 'other-device')]).toEqual([]);
    expect(new GroupKeySearch([]).size).toBe(0);
  });
});
