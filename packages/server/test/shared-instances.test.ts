import { readFileSync } from 'node:fs';
import { parseConnectionString, silentLogger, type ProvisioningInstance } from '@opendps/model';
import { startRedis, type RedisServer } from '../../../test/support/redis-server';
import { createServer, instanceCollection, type RunningServer } from '../src';
import { callServiceApi } from '../src/cli/service-client';
import { tempDir } from './support';

/** Several gateway nodes on one Redis share their provisioning instances (docs/architecture.md, State). */
describe('instances shared through Redis', () => {
  let redis: RedisServer;
  const dirs = [tempDir(), tempDir()];
  let nodes: RunningServer[] = [];
  beforeAll(async () => {
    redis = await startRedis();
    // Both nodes start at the same moment: exactly one creates the default instance.
    nodes = await Promise.all(
      dirs.map((dir) => createServer({ dataDir: dir.path, redisUrl: redis.url, ports: { https: 0, mqtt: 0, amqp: 0, hub: 0 }, logger: silentLogger, instanceRefreshMs: 100 })),
    );
  });
  afterAll(async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    await redis?.stop();
    for (const dir of dirs) dir.remove();
  });

  const target = (node: RunningServer) => {
    const fields = parseConnectionString(node.connection.serviceConnectionString);
    return {
      hostName: fields.HostName ?? '',
      keyName: fields.SharedAccessKeyName ?? '',
      key: fields.SharedAccessKey ?? '',
      host: 'localhost',
      port: Number(node.endpoints.https.split(':')[1]),
      ca: readFileSync(node.caFile, 'utf8'),
    };
  };

  it('gives every node the same ID scope and keys', () => {
    const [a, b] = nodes;
    expect(a?.store.kind).toBe('redis');
    expect(b?.connection.idScope).toBe(a?.connection.idScope);
    expect(b?.connection.serviceConnectionString).toBe(a?.connection.serviceConnectionString);
  });

  it('reads on one node what the other wrote', async () => {
    const [a, b] = nodes as [RunningServer, RunningServer];
    await callServiceApi(target(a), 'PUT', '/enrollments/shared-1', { body: { registrationId: 'shared-1', attestation: { type: 'symmetricKey' } } });
    const read = await callServiceApi(target(b), 'GET', '/enrollments/shared-1');
    expect(read.body).toMatchObject({ registrationId: 'shared-1' });
  });

  it('refreshes each node’s instance snapshot from the store', async () => {
    const [a, b] = nodes as [RunningServer, RunningServer];
    const stored = (await instanceCollection(a.store).get('default'))?.value as ProvisioningInstance;
    await instanceCollection(a.store).put('second', { ...stored, name: 'second', idScope: '0ne00000B22', policies: [] });
    const deadline = Date.now() + 5000;
    while (!b.instances().some((instance) => instance.name === 'second') && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(b.instances().map((instance) => instance.name)).toEqual(['default', 'second']);
  });
});
