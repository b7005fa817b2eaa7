import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSasToken } from '@opendps/attestation';
import { BuiltInHub } from '@opendps/hub';
import { generateSymmetricKey } from '@opendps/model';
import { DpsRegistrationService, newOperationId, type HubDirectory } from '@opendps/registration';
import { RedisStore, SqliteStore, enrollments, type Store } from '@opendps/store';
import { startRedis, type RedisServer } from '../../../test/support/redis-server';
import { ONE_HUB, testInstance } from './fixtures';

/**
 * Every operationId a device receives can be polled on every node for the operation's lifetime,
 * the one of a register answered at once (200 `assigned`) too.
 */
const idScope = '0ne0000B0B1';
const instance = testInstance(idScope, { linkedHubs: ONE_HUB });
const key = generateSymmetricKey();

function hubsOn(store: Store): HubDirectory {
  // Never started: the service only uses its registry (the store) and its host name.
  const hub = new BuiltInHub({ name: 'hub-1', host: 'localhost', port: 8883, tls: { cert: '', key: '' }, store });
  return { connector: () => hub };
}

const proof = (registrationId: string) => ({
  kind: 'sas' as const,
  token: createSasToken({ resource: `${idScope}/registrations/${registrationId}`, key, keyName: 'registration', expiry: Math.floor(Date.now() / 1000) + 3600 }),
});

const node = (store: Store, nodeId: string, ttlSeconds?: number) =>
  // A generous answer-within: the register is answered at once (200) however loaded the machine is.
  new DpsRegistrationService({
    store,
    instances: () => [instance],
    hubs: hubsOn(store),
    nodeId,
    answerWithinMs: 60_000,
    ...(ttlSeconds === undefined ? {} : { operationTtlSeconds: ttlSeconds }),
  });

async function immediateThenPolledElsewhere(storeA: Store, storeB: Store, registrationId: string): Promise<void> {
  await enrollments(storeA, idScope).put({ registrationId, attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: generateSymmetricKey() } } });
  const nodeA = node(storeA, 'node-a');
  const nodeB = node(storeB, 'node-b');
  const registered = await nodeA.register({ idScope, registrationId, proof: proof(registrationId), transport: 'mqtt' });
  expect(registered.status).toBe(200);
  expect(registered.body.status).toBe('assigned');
  // The final record holds what a poll answers with and whose it is, nothing else (no lease, payload or address).
  const stored = await storeB.collection(idScope, 'operations').get(registered.body.operationId);
  expect(stored?.value).toEqual({ ...registered.body, registrationId });
  for (const poller of [nodeA, nodeB]) {
    const polled = await poller.operationStatus({ idScope, registrationId, operationId: registered.body.operationId, proof: proof(registrationId), transport: 'https' });
    expect(polled.status).toBe(200);
    expect(polled.body).toEqual(registered.body);
  }
}

describe('an operation answered at once can be polled', () => {
  test('on SQLite, from a second service on the same store file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'opendps-operations-'));
    const storeA = new SqliteStore(join(dir, 'store.db'));
    const storeB = new SqliteStore(join(dir, 'store.db'));
    try {
      await immediateThenPolledElsewhere(storeA, storeB, 'at-once-sqlite');
    } finally {
      await storeB.close();
      await storeA.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('for the operation TTL, as every other operation, and not after it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'opendps-operations-'));
    let now = Date.now();
    const store = new SqliteStore(join(dir, 'store.db'), { now: () => now });
    try {
      const registrationId = 'at-once-ttl';
      await enrollments(store, idScope).put({ registrationId, attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: generateSymmetricKey() } } });
      const service = node(store, 'node-a', 60);
      const registered = await service.register({ idScope, registrationId, proof: proof(registrationId), transport: 'mqtt' });
      expect(registered.status).toBe(200);
      const poll = () => service.operationStatus({ idScope, registrationId, operationId: registered.body.operationId, proof: proof(registrationId), transport: 'mqtt' });
      now += 59_000;
      expect((await poll()).body.status).toBe('assigned');
      now += 2_000;
      await expect(poll()).rejects.toMatchObject({ errorCode: 404204 });
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('on Redis, from a second node', () => {
    let redis: RedisServer;
    beforeAll(async () => {
      redis = await startRedis();
    });
    afterAll(() => redis.stop());

    test('two services, two connections, one real Redis', async () => {
      const storeA = await RedisStore.connect(redis.url);
      const storeB = await RedisStore.connect(redis.url);
      try {
        await immediateThenPolledElsewhere(storeA, storeB, 'at-once-redis');
      } finally {
        await storeA.close();
        await storeB.close();
      }
    });
  });
});

describe('operation ids', () => {
  test('keep the `4.<16 hex>.<guid>` shape and sort in the order they were issued', () => {
    const at = Date.UTC(2026, 11, 6);
    const ids = [newOperationId(at), newOperationId(at), newOperationId(at + 1), newOperationId(at + 86_400_000)];
    for (const id of ids) expect(id).toMatch(/^4\.[0-9a-f]{16}\.[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect([...ids].sort()).toEqual(ids);
    // The clock and the counter order them; the guid keeps two ids of one millisecond apart and unguessable.
    expect(ids[0]!.slice(0, 18)).not.toBe(ids[1]!.slice(0, 18));
    expect(new Set(ids.map((id) => id.slice(19))).size).toBe(ids.length);
  });
});
