/**
 * The admin API's hub device routes (packages/server/src/admin/hub-devices.ts) with two nodes on one
 * Redis: a desired-property change saved through node A (as the console's Hub devices page does)
 * reaches the unmodified Node device SDK connected to the hub on node B.
 */
import { request } from 'node:https';
import { createSasToken } from '@opendps/attestation';
import { generateSymmetricKey, parseConnectionString } from '@opendps/model';
import { connectToHub, registerWithSdk, type HubDevice } from './support/devices';
import { startOpenDps, type OpenDps } from './support/opendps';
import { startRedis, type RedisServer } from './support/redis-server';

let redis: RedisServer;
let a: OpenDps;
let b: OpenDps;
let device: HubDevice | undefined;

beforeAll(async () => {
  redis = await startRedis();
  a = await startOpenDps({ redisUrl: redis.url });
  b = await startOpenDps({ redisUrl: redis.url });
}, 60_000);

afterAll(async () => {
  await device?.close().catch(() => undefined);
  await b?.stop();
  await a?.stop();
  await redis?.stop();
});

const portOf = (endpoint: string | null): number => Number(endpoint?.slice(endpoint.lastIndexOf(':') + 1));
const adminKey = (node: OpenDps): string => (node.connection as typeof node.connection & { adminConnectionString: string }).adminConnectionString;

/** One request signed with a service SAS for `connectionString` (its HostName is the `sr`). */
function signedCall(node: OpenDps, connectionString: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const fields = parseConnectionString(connectionString);
  const authorization = createSasToken({ resource: fields.HostName ?? '', key: fields.SharedAccessKey ?? '', keyName: fields.SharedAccessKeyName ?? '', expiry: Math.floor(Date.now() / 1000) + 600 });
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: 'localhost', port: portOf(node.connection.endpoints.https), method, path, ca: node.ca, headers: { authorization, ...(payload ? { 'content-type': 'application/json' } : {}) } },
      (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as unknown) : undefined }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

it('a desired change saved through node A reaches the device connected to node B', async () => {
  const key = generateSymmetricKey();
  const registrationId = 'console-across-nodes';
  const enrolled = await signedCall(a, a.connection.serviceConnectionString, 'PUT', `/enrollments/${registrationId}?api-version=2021-10-01`, {
    registrationId,
    attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: key } },
  });
  expect(enrolled.status).toBe(200);
  const credential = { kind: 'symmetricKey' as const, registrationId, key };
  const endpoints = { mqttPort: portOf(a.connection.endpoints.mqtt), httpsPort: portOf(a.connection.endpoints.https), ca: a.ca };
  const registered = await registerWithSdk('mqtt', endpoints, a.connection.idScope, credential);
  const hubOnB = b.connection.endpoints.hubs[0] ?? '';
  expect(hubOnB).not.toBe(a.connection.endpoints.hubs[0]);
  device = await connectToHub(hubOnB, registered.deviceId, credential, a.ca);
  const twin = await device.client.getTwin();
  const notified = new Promise<Record<string, unknown>>((resolve) => {
    twin.on('properties.desired', (patch: Record<string, unknown>) => {
      if (patch.mode === 'eco') resolve(patch);
    });
  });

  const path = `/admin/instances/default/hubs/hub-1/devices/${registrationId}/twin`;
  const read = await signedCall(a, adminKey(a), 'GET', path);
  expect(read.status).toBe(200);
  // Node A does not hold the device's connection: it says what it sees.
  expect((read.body as { connectionState: string }).connectionState).toBe('Disconnected');
  const saved = await signedCall(a, adminKey(a), 'PATCH', path, { properties: { desired: { mode: 'eco' } } });
  expect(saved.status).toBe(200);
  expect(await notified).toMatchObject({ mode: 'eco' });
  expect((await signedCall(b, adminKey(b), 'GET', path)).body).toMatchObject({ connectionState: 'Connected', properties: { desired: { mode: 'eco' } } });
}, 60_000);
