/**
 * Two gateway processes (the built CLI) sharing one Redis (docs/architecture.md "State"): a device
 * registers on node A, is answered 202 with an operation id, and polls that operation on node B.
 * Then node A dies (SIGKILL) after its 202 but before the work is written, and node B, polled after
 * A's lease has expired, takes the operation over and assigns the device.
 *
 * Node A reaches Redis through a small TCP proxy in this process. For the crash, the proxy forwards
 * A's write of the in-flight operation (`"status":"assigning"`) and then holds back everything else
 * A sends, so A can answer 202 but its assignment never reaches Redis; the test checks that in Redis
 * before polling node B. OPENDPS_ANSWER_WITHIN_MS=0 forces the 202 and OPENDPS_LEASE_SECONDS=2
 * shortens the lease (packages/server/src/device-plane.ts).
 */
import net from 'node:net';
import { generateSymmetricKey, validateIndividualEnrollment } from '@opendps/model';
import { enrollments, openStore, registrations, type Store } from '@opendps/store';
import { MqttDpsSession, deviceSas, startGateway, type Gateway, type MqttDpsAnswer } from './support/devices';
import { startRedis, type RedisServer } from './support/redis-server';

// A lease no test outlives: its end is reached by rewriting it in Redis, not by waiting (the nodes
// are other processes, on the real clock).
const GATEWAY_ENV = { OPENDPS_ANSWER_WITHIN_MS: '0', OPENDPS_LEASE_SECONDS: '60', OPENDPS_LOG_LEVEL: 'info' };
const key = generateSymmetricKey();

/** A TCP proxy to Redis that can be told to stop forwarding client bytes after a marker has passed. */
class FreezingProxy {
  private frozen = false;
  private trip: { marker: Buffer; resolve: () => void } | undefined;
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly server: net.Server,
    readonly url: string,
  ) {}

  static async start(upstreamPort: number): Promise<FreezingProxy> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const proxy = new FreezingProxy(server, `redis://127.0.0.1:${(server.address() as net.AddressInfo).port}`);
    server.on('connection', (client) => proxy.relay(client, net.connect(upstreamPort, '127.0.0.1')));
    return proxy;
  }

  /** Resolves once a client chunk containing `marker` has been forwarded; later client bytes are dropped. */
  freezeAfter(marker: string): Promise<void> {
    return new Promise((resolve) => (this.trip = { marker: Buffer.from(marker), resolve }));
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private relay(client: net.Socket, upstream: net.Socket): void {
    this.sockets.add(client).add(upstream);
    client.on('data', (chunk: Buffer) => {
      if (this.frozen) return;
      upstream.write(chunk);
      if (this.trip && chunk.includes(this.trip.marker)) {
        this.frozen = true;
        this.trip.resolve();
      }
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    const end = (): void => {
      client.destroy();
      upstream.destroy();
    };
    for (const socket of [client, upstream]) {
      socket.on('error', end);
      socket.on('close', end);
    }
  }
}

let redis: RedisServer;
let proxy: FreezingProxy;
let nodeA: Gateway;
let nodeB: Gateway;
let store: Store;
let idScope: string;

beforeAll(async () => {
  redis = await startRedis();
  proxy = await FreezingProxy.start(redis.port);
  nodeA = await startGateway(['--redis-url', proxy.url], GATEWAY_ENV);
  nodeB = await startGateway(['--redis-url', redis.url], GATEWAY_ENV);
  idScope = nodeA.connection.idScope;
  store = await openStore({ dataDir: nodeA.dataDir, redisUrl: redis.url });
  for (const registrationId of ['gw-dev-1', 'gw-dev-2']) {
    await enrollments(store, idScope).put(
      validateIndividualEnrollment({ registrationId, attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: generateSymmetricKey() } } }),
    );
  }
}, 60_000);

afterAll(async () => {
  await nodeA?.stop();
  await nodeB?.stop();
  await store?.close();
  await proxy?.close();
  await redis?.stop();
});

/** Registers on `node` over MQTT and returns its first answer. */
async function registerOn(node: Gateway, registrationId: string, after?: (answer: MqttDpsAnswer) => Promise<void>): Promise<MqttDpsAnswer> {
  const session = await MqttDpsSession.open({ port: node.endpoints.mqttPort, ca: node.ca, idScope, registrationId, password: deviceSas(idScope, registrationId, key) });
  const answer = await session.register(registrationId);
  await after?.(answer);
  await session.close(true);
  return answer;
}

/** Polls the operation on `node` over MQTT until it is no longer 202 (`times` polls at most). */
async function pollOn(node: Gateway, registrationId: string, operationId: string, times = 100): Promise<MqttDpsAnswer[]> {
  const session = await MqttDpsSession.open({ port: node.endpoints.mqttPort, ca: node.ca, idScope, registrationId, password: deviceSas(idScope, registrationId, key) });
  try {
    const answers = [await session.poll(operationId)];
    while (answers.at(-1)?.status === 202 && answers.length < times) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      answers.push(await session.poll(operationId));
    }
    return answers;
  } finally {
    await session.close();
  }
}

test('both nodes serve the same instance from Redis', () => {
  expect(nodeB.connection.idScope).toBe(idScope);
  expect(nodeA.child.pid).not.toBe(nodeB.child.pid);
});

test('a registration answered 202 by node A is assigned when polled on node B', async () => {
  const registered = await registerOn(nodeA, 'gw-dev-1');
  expect(registered.status).toBe(202);
  expect(registered.retryAfter).toBe(2);
  expect(registered.body).toMatchObject({ status: 'assigning', operationId: expect.any(String), registrationState: { registrationId: 'gw-dev-1', status: 'assigning' } });
  const operationId = String(registered.body?.operationId);

  const answers = await pollOn(nodeB, 'gw-dev-1', operationId);
  expect(answers.at(-1)).toMatchObject({
    status: 200,
    body: { operationId, status: 'assigned', registrationState: { registrationId: 'gw-dev-1', deviceId: 'gw-dev-1', status: 'assigned' } },
  });
  // Node A did the work (its own built-in hub); node B only read the outcome from Redis.
  expect(answers.at(-1)?.body?.registrationState).toMatchObject({ assignedHub: nodeA.connection.endpoints.hubs[0] });
  expect(nodeB.output()).not.toMatch(/taking over an abandoned operation/);
});

test('node A killed after its 202, before the work is written: node B takes the operation over after the lease', async () => {
  const frozen = proxy.freezeAfter('"status":"assigning"');
  const registered = await registerOn(nodeA, 'gw-dev-2', () => nodeA.kill());
  await frozen;
  expect(registered.status).toBe(202);
  const operationId = String(registered.body?.operationId);

  // What A left in Redis: the in-flight record under its lease, and nothing of the assignment.
  const operations = store.collection<{ status: string; lease: { owner: string; expiresAt: number } }>(idScope, 'operations');
  const operation = await operations.get(operationId);
  expect(operation?.value.status).toBe('assigning');
  expect(await registrations(store, idScope).get('gw-dev-2')).toBeUndefined();

  // While A's lease runs, B leaves the operation alone.
  expect(operation!.value.lease.expiresAt).toBeGreaterThan(Date.now() + 30_000);
  const early = await pollOn(nodeB, 'gw-dev-2', operationId, 1);
  expect(early).toMatchObject([{ status: 202 }]);
  expect(nodeB.output()).not.toMatch(/taking over an abandoned operation/);

  // The lease runs out: what B's clock will find once A's renewals have stopped for a lease.
  await operations.put(operationId, { ...operation!.value, lease: { ...operation!.value.lease, expiresAt: Date.now() - 1 } }, { ifMatch: operation!.etag, ttlSeconds: 1800 });
  const answers = await pollOn(nodeB, 'gw-dev-2', operationId);
  expect(answers.at(-1)).toMatchObject({
    status: 200,
    body: {
      operationId,
      status: 'assigned',
      registrationState: { registrationId: 'gw-dev-2', deviceId: 'gw-dev-2', status: 'assigned', assignedHub: nodeB.connection.endpoints.hubs[0] },
    },
  });
  expect(await registrations(store, idScope).get('gw-dev-2')).toMatchObject({ status: 'assigned', assignedHub: nodeB.connection.endpoints.hubs[0] });
  expect(nodeB.output()).toMatch(/taking over an abandoned operation/);
});
