import { Cluster, Redis } from 'ioredis';
import { startRedis, type RedisServer } from '../../../test/support/redis-server';
import { RedisStore } from '../src';
import { describeStoreConformance } from './conformance';

/**
 * The same conformance suite on a one-node Redis Cluster. Redis refuses any command or script that
 * touches keys of two hash slots (CROSSSLOT) even on one node, so this proves the key design.
 */
async function startCluster(): Promise<RedisServer> {
  // A short node timeout: a master that gains slots waits that long (at least 500 ms) before `ok`.
  const server = await startRedis({
    args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '500', '--cluster-announce-ip', '127.0.0.1'],
  });
  const admin = new Redis(server.url);
  try {
    await admin.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
    for (let i = 0; !/cluster_state:ok/.test(String(await admin.call('CLUSTER', 'INFO'))); i++) {
      if (i > 200) throw new Error('the one-node cluster did not come up');
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  } catch (error) {
    await server.stop();
    throw error;
  } finally {
    admin.disconnect();
  }
  return server;
}

let server: RedisServer | undefined;

describeStoreConformance(
  'redis cluster',
  async () => {
    server = await startCluster();
    return new RedisStore(new Cluster([{ host: '127.0.0.1', port: server.port }]));
  },
  () => server?.stop(),
);

test('a command that spans collections is refused by this cluster (the suite above would notice)', async () => {
  const cluster = await startCluster();
  const client = new Redis(cluster.url);
  try {
    await expect(client.mget('opendps:{a/x}:ids', 'opendps:{b/y}:ids')).rejects.toThrow(/CROSSSLOT/);
    expect(await client.mget('opendps:{a/x}:ids', 'opendps:{a/x}:doc:1')).toEqual([null, null]);
  } finally {
    client.disconnect();
    await cluster.stop();
  }
});
