import { readFileSync } from 'node:fs';
import { generateSymmetricKey, silentLogger } from '@opendps/model';
import { startRedis, type RedisServer } from '../../../test/support/redis-server';
import { createServer, type RunningServer } from '../src';
import { httpsCall, portOf, registerOverHttps, serviceSas } from './admin-support';
import { tempDir } from './support';

/** Gateway nodes sharing one Redis: a hub linked through one node's admin API reaches the others. */
describe('admin API across nodes', () => {
  let redis: RedisServer;
  const dirs = [tempDir(), tempDir()];
  let nodes: RunningServer[] = [];
  beforeAll(async () => {
    redis = await startRedis();
    nodes = await Promise.all(
      dirs.map((dir) => createServer({ dataDir: dir.path, redisUrl: redis.url, ports: { https: 0, mqtt: 0, amqp: 0, hub: 0 }, logger: silentLogger, instanceRefreshMs: 100 })),
    );
  }, 30_000);
  afterAll(async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    await redis?.stop();
    for (const dir of dirs) dir.remove();
  });

  const until = async (condition: () => boolean): Promise<void> => {
    const deadline = Date.now() + 5000;
    while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  };

  it('shares the admin key; a hub linked on one node is served by the other for its registrations, and unlinked everywhere', async () => {
    const [a, b] = nodes as [RunningServer, RunningServer];
    expect(b.connection.adminConnectionString).toBe(a.connection.adminConnectionString);
    // Each node has its own data directory; the development CA in it is the one the nodes share.
    expect(readFileSync(b.caFile, 'utf8')).toBe(readFileSync(a.caFile, 'utf8'));
    const caOf = (node: RunningServer): string => readFileSync(node.caFile, 'utf8');
    const call = (node: RunningServer, method: string, path: string, body?: unknown) =>
      httpsCall({ port: portOf(node.endpoints.https), ca: caOf(node), method, path, authorization: serviceSas(a.connection.adminConnectionString), ...(body ? { body } : {}) });

    const linked = await call(a, 'PUT', '/admin/instances/default/hubs/hub-shared', { builtin: true });
    expect(linked.status).toBe(201);
    const hostName = (linked.body as { hostName: string }).hostName;
    await until(() => b.hubs.has('hub-shared'));
    expect(b.hubs.has('hub-shared')).toBe(true);
    // Node B read the link from the store and serves the hub on its own port: it shows that address.
    expect(hostName).toBe(a.hubs.get('hub-shared')?.hostName);
    expect((await call(b, 'GET', '/admin/instances/default/hubs/hub-shared')).body).toMatchObject({ hostName: b.hubs.get('hub-shared')?.hostName });
    expect(b.hubs.get('hub-shared')?.hostName).not.toBe(hostName);

    // A device registering on node B is created in the hub's registry (in Redis), which node A's hub serves.
    const key = generateSymmetricKey();
    const enrolled = await httpsCall({
      port: portOf(b.endpoints.https),
      ca: caOf(b),
      method: 'PUT',
      path: '/enrollments/across-nodes?api-version=2021-10-01',
      authorization: serviceSas(b.connection.serviceConnectionString),
      body: { registrationId: 'across-nodes', attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: key } }, iotHubs: [hostName] },
    });
    expect(enrolled.status).toBe(200);
    const registered = await registerOverHttps(portOf(b.endpoints.https), caOf(b), b.connection.idScope, 'across-nodes', key);
    // Every node serves every built-in hub (one registry in the store); a device is told the address
    // of the hub listener on the node that registered it.
    const onB = b.hubs.get('hub-shared')?.hostName;
    expect(registered.body).toMatchObject({ status: 'assigned', registrationState: { assignedHub: onB } });
    expect(await a.hubs.get('hub-shared')?.getDevice('across-nodes')).toBeDefined();

    expect((await call(a, 'DELETE', '/admin/instances/default/hubs/hub-shared')).status).toBe(204);
    await until(() => !b.hubs.has('hub-shared'));
    expect(b.hubs.has('hub-shared')).toBe(false);
    expect(a.hubs.has('hub-shared')).toBe(false);
  });
});
