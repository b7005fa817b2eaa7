import { Redis } from 'ioredis';
import { startRedis, type RedisServer } from '../../../test/support/redis-server';
import { RedisStore, caCertificates, enrollmentGroups } from '../src';
import { describeStoreConformance } from './conformance';

let server: RedisServer | undefined;

describeStoreConformance(
  'redis',
  async () => {
    server = await startRedis();
    return RedisStore.connect(server.url);
  },
  () => server?.stop(),
);

describe('RedisStore connection', () => {
  test('connect fails fast, with the address, when Redis is unreachable', async () => {
    const down = await startRedis();
    await down.stop();
    const started = Date.now();
    await expect(RedisStore.connect(`redis://user:secret@127.0.0.1:${down.port}`)).rejects.toThrow(
      new RegExp(`Redis at redis://user:\\*\\*\\*@127\\.0\\.0\\.1:${down.port}/? is unreachable: .*ECONNREFUSED`),
    );
    expect(Date.now() - started).toBeLessThan(3000);
  });

  test('a Redis restart: the store reconnects, keeps working, and data on the AOF is still there', async () => {
    const redis = await startRedis({ appendonly: true });
    const errors: Error[] = [];
    const store = await RedisStore.connect(redis.url, { onError: (e) => errors.push(e) });
    try {
      const docs = store.collection<{ n: number }>('restart', 'enrollments');
      const before = await docs.put('dev-1', { n: 1 }, { indexes: { group: ['g'] } });

      await redis.restart();
      // The scripts are gone from the restarted server: this put needs the NOSCRIPT fallback.
      const after = await docs.put('dev-1', { n: 2 }, { ifMatch: before.etag, indexes: { group: ['g'] } });
      expect(after.value).toEqual({ n: 2 });
      expect(await docs.get('dev-1')).toEqual(after);
      expect((await docs.findByIndex('group', 'g')).map((d) => d.id)).toEqual(['dev-1']);
      expect(await store.increment('restart-counter', 60)).toBe(1);

      // A crash (SIGKILL) and restart: a command sent while Redis is down waits for it.
      redis.kill();
      const pending = docs.get('dev-1');
      await redis.restart();
      expect((await pending)?.value).toEqual({ n: 2 });
    } finally {
      await store.close();
      await redis.stop();
    }
  });
});

test('an expired document leaves nothing behind: hash, ordered ids, expiry set and index entries are cleaned', async () => {
  const redis = await startRedis();
  const store = await RedisStore.connect(redis.url);
  const raw = new Redis(redis.url);
  try {
    const ops = store.collection('0ne00000001', 'operations');
    await ops.put('Op-1', { a: 1 }, { ttlSeconds: 0.2, indexes: { status: ['assigning'] } });
    await ops.put('op-2', { a: 2 }, { indexes: { status: ['assigning'] } });
    const prefix = 'opendps:{0ne00000001/operations}:';
    expect((await raw.keys('*')).sort()).toEqual(
      ['doc:op-1', 'doc:op-2', 'exp', 'ids', 'idx:status:assigning', 'ix:op-1', 'ix:op-2'].map((k) => prefix + k),
    );
    expect(await raw.pttl(`${prefix}doc:op-1`)).toBeGreaterThan(0);
    // Redis expires on its own clock: wait for the expiry itself (count sweeps), not a fixed time.
    for (const deadline = Date.now() + 5000; (await ops.count()) !== 1; ) {
      if (Date.now() > deadline) throw new Error('op-1 did not expire');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect((await raw.keys('*')).sort()).toEqual(['doc:op-2', 'ids', 'idx:status:assigning', 'ix:op-2'].map((k) => prefix + k));
    expect(await raw.zrange(`${prefix}ids`, 0, -1)).toEqual(['op-2']);
    expect(await raw.zrange(`${prefix}idx:status:assigning`, 0, -1)).toEqual(['op-2']);
    expect(await store.increment('window', 5)).toBe(1);
    const ttl = await raw.ttl('opendps:counter:window');
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(5);
  } finally {
    raw.disconnect();
    await store.close();
    await redis.stop();
  }
});

test('CA certificates written under their own hash tag (the layout before co-location) are moved, etag and indexes kept', async () => {
  const redis = await startRedis();
  const raw = new Redis(redis.url);
  const legacy = 'opendps:{0ne000000C1/caCertificates}:';
  const value = { name: 'Root-A', certificate: 'PEM', isVerified: true, info: { subjectName: 'CN=Root A', sha1Thumbprint: 'AB', sha256Thumbprint: 'CD' } };
  await raw.hset(`${legacy}doc:root-a`, 'e', '"legacy-etag"', 'v', JSON.stringify(value));
  await raw.zadd(`${legacy}ids`, 0, 'root-a');
  await raw.sadd(`${legacy}ix:root-a`, 'thumbprint:ab', 'subject:cn=root a');
  await raw.zadd(`${legacy}idx:thumbprint:ab`, 0, 'root-a');
  await raw.zadd(`${legacy}idx:subject:cn=root a`, 0, 'root-a');
  const store = await RedisStore.connect(redis.url);
  try {
    const cas = caCertificates(store, '0ne000000C1');
    expect(await cas.get('ROOT-A')).toEqual({ ...value, etag: '"legacy-etag"' });
    expect((await cas.findByThumbprint('ab')).map((ca) => ca.name)).toEqual(['Root-A']);
    expect(await cas.count()).toBe(1);
    expect(await raw.keys(`${legacy}*`)).toEqual([]);
    // Now co-located with the groups: a group naming it blocks its delete atomically.
    await enrollmentGroups(store, '0ne000000C1').put({ enrollmentGroupId: 'g', attestation: { type: 'x509', x509: { caReferences: { primary: 'root-a' } } } });
    await expect(cas.delete('root-a')).rejects.toMatchObject({ errorCode: 409002 });
  } finally {
    raw.disconnect();
    await store.close();
    await redis.stop();
  }
});
