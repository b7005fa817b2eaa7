/**
 * Allocation end to end against the composed server with config-declared hubs: an instance with three
 * built-in hubs weighted 1:2:7 and a configured latency map. A few hundred group devices register
 * through the raw device HTTPS API to show the weighted spread (loosely: the exact distribution over
 * 10,000 ids is unit-tested in allocation/test) and that re-registration keeps every device on its
 * hub; then each policy through the unmodified device SDK (Mqtt): hashed (with and without `iotHubs`),
 * static (and its refusal at write time), geoLatency from `latency.networks` / `latency.table`.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chooseHashed } from '@opendps/allocation';
import { deriveDeviceKey } from '@opendps/attestation';
import { generateSymmetricKey, silentLogger, type LinkedHub } from '@opendps/model';
import { createServer, type RunningServer, type ServerOptions } from '@opendps/server';
import type { ProvisioningServiceClient } from 'azure-iot-provisioning-service';
import { deviceSas, httpsRegister, portOf, rawHttps, registerWithSdk, type DpsEndpoints, type RawResponse } from './support/devices';
import { serviceClient } from './support/opendps';

const HUBS = ['hubA', 'hubB', 'hubC'] as const;
const WEIGHTS = { hubA: 1, hubB: 2, hubC: 7 } as const;
const SPREAD_DEVICES = 300;
const GROUP = 'spread-group';
const groupKey = generateSymmetricKey();

let server: RunningServer;
let dataDir: string;
let ca: string;
let endpoints: DpsEndpoints;
let idScope: string;
let service: ProvisioningServiceClient;
/** Host name (`localhost:port`) -> hub name, and back. */
const hubByHost = new Map<string, string>();
const hostOf = (name: string): string => [...hubByHost].find(([, hub]) => hub === name)![0];

const config: Pick<ServerOptions, 'instances' | 'latency'> = {
  instances: [
    {
      name: 'allocation',
      linkedHubs: HUBS.map((name) => ({ name, builtin: { port: 0 }, allocationWeight: WEIGHTS[name], location: 'westeurope' })),
    },
  ],
  latency: { networks: { '127.0.0.0/8': 'westeurope' }, table: { westeurope: { hubA: 50, hubB: 5, hubC: 90 } } },
};

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'opendps-allocation-'));
  server = await createServer({ dataDir, host: 'localhost', ports: { mqtt: 0, amqp: 0, https: 0, hub: 0 }, logger: silentLogger, instanceRefreshMs: 100, ...config });
  const { connection } = server;
  ca = readFileSync(server.caFile, 'utf8');
  endpoints = { mqttPort: portOf(connection.endpoints.mqtt), httpsPort: portOf(connection.endpoints.https), ca };
  idScope = connection.idScope;
  for (const hub of connection.instances[0]!.linkedHubs) hubByHost.set(hub.hostName, hub.name);
  service = serviceClient(connection.serviceConnectionString, connection.endpoints.https, ca);
  await service.createOrUpdateEnrollmentGroup({
    enrollmentGroupId: GROUP,
    attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: groupKey, secondaryKey: generateSymmetricKey() } },
  } as never);
});

afterAll(async () => {
  await server?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

/** The instance's linked hubs as the server stores them (host names resolved to the listening ports). */
function linkedHubs(): readonly LinkedHub[] {
  return server.instances()[0]!.linkedHubs;
}

/** Register over raw HTTPS with the device SAS, polling the operation while it is `assigning`. */
async function registerRaw(registrationId: string, key: string): Promise<RawResponse> {
  const authorization = deviceSas(idScope, registrationId, key);
  let reply = await httpsRegister(endpoints, idScope, registrationId, { authorization });
  for (let polls = 0; reply.json?.status === 'assigning' && polls < 100; polls++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    reply = await rawHttps({
      port: endpoints.httpsPort,
      ca,
      method: 'GET',
      path: `/${idScope}/registrations/${registrationId}/operations/${String(reply.json.operationId)}?api-version=2019-03-31`,
      headers: { authorization, accept: 'application/json' },
    });
  }
  return reply;
}

/** `work` over `items`, at most `limit` at a time, results in order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const runners = Array.from({ length: limit }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index] as T);
    }
  });
  await Promise.all(runners);
  return results;
}

/** The hub (by name) each device was assigned to over raw HTTPS; every answer must be `assigned`. */
async function assignAll(ids: readonly string[]): Promise<Map<string, string>> {
  const replies = await mapLimit(ids, 20, (id) => registerRaw(id, deriveDeviceKey(groupKey, id)));
  const hubs = new Map<string, string>();
  replies.forEach((reply, index) => {
    expect({ id: ids[index], status: reply.status, state: reply.json?.status }).toEqual({ id: ids[index], status: 200, state: 'assigned' });
    const state = reply.json?.registrationState as { assignedHub: string; deviceId: string };
    const hub = hubByHost.get(state.assignedHub);
    expect(hub).toBeDefined();
    hubs.set(ids[index]!, hub!);
  });
  return hubs;
}

/** An individual symmetric-key enrollment written with the service SDK; returns the device key. */
async function enroll(registrationId: string, fields: Record<string, unknown>): Promise<string> {
  const key = generateSymmetricKey();
  await service.createOrUpdateIndividualEnrollment({
    registrationId,
    attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: generateSymmetricKey() } },
    ...fields,
  } as never);
  return key;
}

/** The first `prefix-N` whose weighted hash over all three hubs is `hub` (so a test can tell policies apart). */
function idHashedTo(prefix: string, hub: string): string {
  for (let n = 0; ; n++) {
    const id = `${prefix}-${n}`;
    if (chooseHashed(linkedHubs(), id).name === hub) return id;
  }
}

async function registerMqtt(registrationId: string, key: string) {
  return registerWithSdk('mqtt', endpoints, idScope, { kind: 'symmetricKey', registrationId, key });
}

describe('weighted hashing over the device HTTPS API', () => {
  const ids = Array.from({ length: SPREAD_DEVICES }, (_, n) => `spread-${String(n).padStart(3, '0')}`);

  test(`${SPREAD_DEVICES} group devices spread about 1:2:7, each identity on its hub; re-registration keeps every device where it was`, async () => {
    const first = await assignAll(ids);
    const counts = Object.fromEntries(HUBS.map((name) => [name, [...first.values()].filter((hub) => hub === name).length]));
    // Expected 30 / 60 / 210; the bounds are several standard deviations wide.
    expect(counts.hubA).toBeGreaterThanOrEqual(10);
    expect(counts.hubA).toBeLessThanOrEqual(60);
    expect(counts.hubB).toBeGreaterThanOrEqual(30);
    expect(counts.hubB).toBeLessThanOrEqual(100);
    expect(counts.hubC).toBeGreaterThanOrEqual(160);
    expect(counts.hubC).toBeLessThanOrEqual(250);
    expect(counts.hubA! + counts.hubB! + counts.hubC!).toBe(SPREAD_DEVICES);

    // The identity exists on the assigned hub only.
    for (const [id, hub] of first) {
      for (const name of HUBS) {
        const device = await server.hubs.get(name.toLowerCase())!.getDevice(id);
        expect({ id, name, present: device !== undefined }).toEqual({ id, name, present: name === hub });
      }
    }

    const again = await assignAll(ids);
    expect(Object.fromEntries(again)).toEqual(Object.fromEntries(first));
  }, 90_000);
});

describe('each policy through the unmodified device SDK (Mqtt)', () => {
  test('hashed: a device lands on one of the linked hubs, and stays there when it registers again', async () => {
    const registrationId = 'policy-hashed';
    const key = await enroll(registrationId, { allocationPolicy: 'hashed' });
    const result = await registerMqtt(registrationId, key);
    expect(result).toMatchObject({ status: 'assigned', deviceId: registrationId, substatus: 'initialAssignment' });
    expect(hubByHost.has(result.assignedHub!)).toBe(true);
    expect(await server.hubs.get(hubByHost.get(result.assignedHub!)!.toLowerCase())!.getDevice(registrationId)).toBeDefined();
    expect((await registerMqtt(registrationId, key)).assignedHub).toBe(result.assignedHub);
  });

  test('hashed with iotHubs: only the named hubs are candidates (host names and hub names)', async () => {
    // Devices the unrestricted hash would send to hubC (weight 7) must land on hubA or hubB instead.
    for (const [n, iotHubs] of [
      [0, [hostOf('hubA'), hostOf('hubB')]],
      [1, ['hubA', 'hubB']],
    ] as const) {
      const registrationId = idHashedTo(`policy-hashed-restricted-${n}`, 'hubC');
      const key = await enroll(registrationId, { allocationPolicy: 'hashed', iotHubs });
      const result = await registerMqtt(registrationId, key);
      expect(result.status).toBe('assigned');
      expect(['hubA', 'hubB']).toContain(hubByHost.get(result.assignedHub!));
      expect(await server.hubs.get('hubc')!.getDevice(registrationId)).toBeUndefined();
    }
  });

  test('static: an enrollment naming exactly one hub lands there', async () => {
    const registrationId = idHashedTo('policy-static', 'hubC');
    const key = await enroll(registrationId, { allocationPolicy: 'static', iotHubs: [hostOf('hubA')] });
    const result = await registerMqtt(registrationId, key);
    expect(result).toMatchObject({ status: 'assigned', assignedHub: hostOf('hubA'), deviceId: registrationId });
    expect(await server.hubs.get('huba')!.getDevice(registrationId)).toBeDefined();
  });

  test('static naming two hubs is refused when the enrollment is written (400), and nothing is stored', async () => {
    const registrationId = 'policy-static-two';
    const refused = await service
      .createOrUpdateIndividualEnrollment({
        registrationId,
        attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: generateSymmetricKey(), secondaryKey: generateSymmetricKey() } },
        allocationPolicy: 'static',
        iotHubs: [hostOf('hubA'), hostOf('hubB')],
      } as never)
      .then(
        () => undefined,
        (error: Error & { response?: { statusCode?: number }; responseBody?: string }) => error,
      );
    expect(refused?.response?.statusCode).toBe(400);
    expect(JSON.parse(refused?.responseBody ?? '{}')).toMatchObject({ errorCode: expect.any(Number) });
    const lookup = await service.getIndividualEnrollment(registrationId).then(
      () => 200,
      (error: Error & { response?: { statusCode?: number } }) => error.response?.statusCode,
    );
    expect(lookup).toBe(404);
  });

  test('static naming a hub that is not linked is refused when the enrollment is written (400012), and nothing is stored', async () => {
    const registrationId = 'policy-static-unlinked';
    const refused = await service
      .createOrUpdateIndividualEnrollment({
        registrationId,
        attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: generateSymmetricKey(), secondaryKey: generateSymmetricKey() } },
        allocationPolicy: 'static',
        iotHubs: ['rogue-hub.azure-devices.net'],
      } as never)
      .then(
        () => undefined,
        (error: Error & { response?: { statusCode?: number }; responseBody?: string }) => error,
      );
    expect(refused?.response?.statusCode).toBe(400);
    expect(JSON.parse(refused?.responseBody ?? '{}')).toMatchObject({ errorCode: 400012, message: expect.stringMatching(/not a hub linked/) });
    const lookup = await service.getIndividualEnrollment(registrationId).then(
      () => 200,
      (error: Error & { response?: { statusCode?: number } }) => error.response?.statusCode,
    );
    expect(lookup).toBe(404);
  });

  test('geoLatency: a loopback device (westeurope in latency.networks) lands on the lowest-latency hub, hubB', async () => {
    // Chosen so that the weighted hash alone would pick hubC: only the latency table sends it to hubB.
    const registrationId = idHashedTo('policy-geolatency', 'hubC');
    const key = await enroll(registrationId, { allocationPolicy: 'geoLatency' });
    const result = await registerMqtt(registrationId, key);
    expect(result).toMatchObject({ status: 'assigned', assignedHub: hostOf('hubB'), deviceId: registrationId });
    expect(await server.hubs.get('hubb')!.getDevice(registrationId)).toBeDefined();
  });

  test('geoLatency with iotHubs: the lowest latency among the named hubs (hubA over hubC)', async () => {
    const registrationId = idHashedTo('policy-geolatency-restricted', 'hubC');
    const key = await enroll(registrationId, { allocationPolicy: 'geoLatency', iotHubs: [hostOf('hubA'), hostOf('hubC')] });
    const result = await registerMqtt(registrationId, key);
    expect(result).toMatchObject({ status: 'assigned', assignedHub: hostOf('hubA') });
  });
});
