import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSasToken, deriveDeviceKey } from '@opendps/attestation';
import { generateSymmetricKey, type EnrollmentGroup } from '@opendps/model';
import { RedisStore, SqliteStore, enrollmentGroups, type Collection, type Store } from '@opendps/store';
import { startRedis, type RedisServer } from '../../../test/support/redis-server';
import { attest } from '../src/attest';

/**
 * The symmetric-key group keys each node keeps (src/group-keys.ts): a group written on one node is
 * used (or no longer accepted) by the next registration on every other node, on both stores. Two
 * nodes are two Store connections to one SQLite file or one Redis.
 */
const idScope = '0ne0000C0DE';
const group = (enrollmentGroupId: string, primaryKey: string, secondaryKey = primaryKey): EnrollmentGroup => ({
  enrollmentGroupId,
  attestation: { type: 'symmetricKey', symmetricKey: { primaryKey, secondaryKey } },
});

/** Which collection methods a store was asked for, as `collection.method`. */
function counted(inner: Store, calls: string[]): Store {
  return {
    kind: inner.kind,
    collection<T>(scope: string, name: string): Collection<T> {
      const collection = inner.collection<T>(scope, name);
      return new Proxy(collection, {
        get(target, method: string) {
          const value = (target as unknown as Record<string, unknown>)[method];
          if (typeof value !== 'function') return value;
          return (...args: unknown[]) => {
            calls.push(`${name}.${method}`);
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        },
      });
    },
    increment: (key, windowSeconds) => inner.increment(key, windowSeconds),
    close: () => inner.close(),
  };
}

async function register(store: Store, registrationId: string, key: string) {
  const token = createSasToken({ resource: `${idScope}/registrations/${registrationId}`, key, keyName: 'registration', expiry: Math.floor(Date.now() / 1000) + 600 });
  const attested = await attest({ store, idScope, registrationId, now: new Date(), purpose: 'register' }, { kind: 'sas', token });
  return attested.attested.enrollment;
}

const backends: Array<[string, () => Promise<{ nodeA: Store; nodeB: Store; stop: () => Promise<void> }>]> = [
  [
    'sqlite',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'opendps-group-keys-'));
      const nodeA = new SqliteStore(join(dir, 'dps.db'));
      const nodeB = new SqliteStore(join(dir, 'dps.db'));
      return { nodeA, nodeB, stop: async () => { await nodeA.close(); await nodeB.close(); rmSync(dir, { recursive: true, force: true }); } };
    },
  ],
  [
    'redis',
    async () => {
      const server: RedisServer = await startRedis();
      const nodeA = await RedisStore.connect(server.url);
      const nodeB = await RedisStore.connect(server.url);
      return { nodeA, nodeB, stop: async () => { await nodeA.close(); await nodeB.close(); await server.stop(); } };
    },
  ],
];

describe.each(backends)('symmetric-key group keys kept per node (%s)', (_name, open) => {
  let nodes: Awaited<ReturnType<typeof open>>;
  const calls: string[] = [];
  let nodeA: Store;

  beforeAll(async () => {
    nodes = await open();
    nodeA = counted(nodes.nodeA, calls);
  });
  afterAll(() => nodes.stop());

  test('read once while no group changes; a group written on another node is found by the next registration here', async () => {
    const first = generateSymmetricKey();
    await enrollmentGroups(nodes.nodeB, idScope).put(group('fleet-a', first));
    expect(await register(nodeA, 'dev-1', deriveDeviceKey(first, 'dev-1'))).toEqual({ kind: 'group', enrollmentGroupId: 'fleet-a' });
    calls.length = 0;
    expect(await register(nodeA, 'dev-2', deriveDeviceKey(first, 'dev-2'))).toEqual({ kind: 'group', enrollmentGroupId: 'fleet-a' });
    // The version, then only the group the search named: the groups are not read again.
    expect(calls.filter((call) => call.startsWith('enrollmentGroups.'))).toEqual(['enrollmentGroups.version', 'enrollmentGroups.get']);

    const second = generateSymmetricKey();
    await enrollmentGroups(nodes.nodeB, idScope).put(group('fleet-b', generateSymmetricKey(), second));
    expect(await register(nodeA, 'dev-3', deriveDeviceKey(second, 'dev-3'))).toEqual({ kind: 'group', enrollmentGroupId: 'fleet-b' });
  });

  test('a group deleted or given new keys on another node no longer admits new devices here (401002)', async () => {
    const key = generateSymmetricKey();
    await enrollmentGroups(nodes.nodeB, idScope).put(group('gone', key));
    await enrollmentGroups(nodes.nodeB, idScope).put(group('rekeyed', generateSymmetricKey()));
    const rekeyedOld = (await enrollmentGroups(nodes.nodeB, idScope).get('rekeyed'))!.attestation.symmetricKey!.primaryKey;
    expect(await register(nodeA, 'dev-10', deriveDeviceKey(key, 'dev-10'))).toEqual({ kind: 'group', enrollmentGroupId: 'gone' });
    expect(await register(nodeA, 'dev-11', deriveDeviceKey(rekeyedOld, 'dev-11'))).toEqual({ kind: 'group', enrollmentGroupId: 'rekeyed' });

    await enrollmentGroups(nodes.nodeB, idScope).delete('gone');
    await enrollmentGroups(nodes.nodeB, idScope).put(group('rekeyed', generateSymmetricKey()));
    await expect(register(nodeA, 'dev-12', deriveDeviceKey(key, 'dev-12'))).rejects.toMatchObject({ errorCode: 401002 });
    await expect(register(nodeA, 'dev-13', deriveDeviceKey(rekeyedOld, 'dev-13'))).rejects.toMatchObject({ errorCode: 401002 });
  });

  test('a token for the wrong registration id, or signed with no group key, is 401002', async () => {
    const key = generateSymmetricKey();
    await enrollmentGroups(nodes.nodeB, idScope).put(group('strict', key));
    await expect(register(nodeA, 'dev-20', deriveDeviceKey(key, 'dev-21'))).rejects.toMatchObject({ errorCode: 401002 });
    await expect(register(nodeA, 'dev-22', generateSymmetricKey())).rejects.toMatchObject({ errorCode: 401002 });
  });
});
