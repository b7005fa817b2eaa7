import { Redis } from 'ioredis';
import { isDpsError } from '@opendps/model';
import { startRedis, type RedisServer } from '../../../test/support/redis-server';
import { RedisStore } from '../src';

/**
 * A Redis that is up but cannot serve a key now (here a cluster node that holds no hash slot, so
 * every key answers CLUSTERDOWN) is a coded 503 with retry-after; a reply that is a real error
 * (WRONGTYPE) stays what it was, never disguised as retryable.
 */
let server: RedisServer;
let client: Redis;
let store: RedisStore;

beforeAll(async () => {
  server = await startRedis({ args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '500'] });
  client = new Redis(server.url);
  store = new RedisStore(client, { ownsClient: false });
});
afterAll(async () => {
  await store?.close();
  client?.disconnect();
  await server?.stop();
});

const coded = (error: unknown) => (isDpsError(error) ? { status: error.status, errorCode: error.errorCode, retryAfter: error.info?.['retry-after'] } : String(error));

test('a slot without a master is storeUnavailable with retry-after', async () => {
  const failure = await store.collection('scope', 'things').get('x').catch((error: unknown) => error);
  expect(coded(failure)).toEqual({ status: 503, errorCode: 503002, retryAfter: '2' });
  expect(coded(await store.increment('counter', 10).catch((error: unknown) => error))).toEqual({ status: 503, errorCode: 503002, retryAfter: '2' });
});

test('a real error reply is not made retryable', async () => {
  await client.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
  for (let i = 0; !/cluster_state:ok/.test(String(await client.call('CLUSTER', 'INFO'))); i++) {
    if (i > 400) throw new Error('the one-node cluster did not come up');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  const collection = store.collection('scope', 'strings') as ReturnType<RedisStore['collection']> & { prefix: string };
  await client.set(`${collection.prefix}doc:x`, 'not a hash');
  const failure = await collection.get('x').catch((error: unknown) => error);
  expect(String(failure)).toMatch(/WRONGTYPE/);
});

test('connect() to a cluster node whose cluster is not ready fails at start with the reason', async () => {
  const lonely = await startRedis({ args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf'] });
  try {
    await expect(RedisStore.connect(lonely.url, { connectTimeoutMs: 300 })).rejects.toThrow(/Redis Cluster at .* is unreachable or not ready/);
  } finally {
    await lonely.stop();
  }
});
