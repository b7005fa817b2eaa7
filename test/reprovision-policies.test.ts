/**
 * Reprovisioning end to end (docs/service-rest.md §13) with the unmodified SDKs: an enrollment pinned to
 * hub A, the device registers (Mqtt), connects with azure-iot-device and reports a property, an
 * operator changes its desired properties and tags on hub A; then the enrollment moves to hub B
 * (service SDK) with each reprovision policy and the device registers again. What the device sees
 * (substatus, hub), the twin on the new hub read through the device client (migrated or reset), and
 * whether the old hub still holds the device.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { generateSymmetricKey, silentLogger } from '@opendps/model';
import { createServer, type RunningServer } from '@opendps/server';
import { SharedAccessSignature } from 'azure-iot-common';
import type { ProvisioningServiceClient } from 'azure-iot-provisioning-service';
import { connectToHub, hubTwin, portOf, rawHttps, registerWithSdk, type DeviceCredential, type DpsEndpoints, type RawResponse } from './support/devices';
import { serviceClient } from './support/opendps';

let server: RunningServer;
let dataDir: string;
let ca: string;
let endpoints: DpsEndpoints;
let idScope: string;
let service: ProvisioningServiceClient;

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'opendps-reprovision-'));
  server = await createServer({
    dataDir,
    host: 'localhost',
    ports: { mqtt: 0, amqp: 0, https: 0, hub: 0 },
    logger: silentLogger,
    instanceRefreshMs: 100,
    instances: [{ name: 'reprovision', linkedHubs: ['hubA', 'hubB'].map((name) => ({ name, builtin: { port: 0 } })) }],
  });
  const { connection } = server;
  ca = readFileSync(server.caFile, 'utf8');
  endpoints = { mqttPort: portOf(connection.endpoints.mqtt), httpsPort: portOf(connection.endpoints.https), ca };
  idScope = connection.idScope;
  service = serviceClient(connection.serviceConnectionString, connection.endpoints.https, ca);
});

afterAll(async () => {
  await server?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

function hub(name: 'hubA' | 'hubB'): { hostName: string; connectionString: string } {
  const linked = server.connection.instances[0]!.linkedHubs.find((candidate) => candidate.name === name)!;
  return { hostName: linked.hostName, connectionString: linked.connectionString! };
}

/** `PATCH /twins/{id}` on a built-in hub's REST API with its iothubowner policy, as an operator's back end does. */
async function patchTwinOnHub(hubConnectionString: string, deviceId: string, patch: unknown): Promise<RawResponse> {
  const fields = Object.fromEntries(hubConnectionString.split(';').map((part) => [part.slice(0, part.indexOf('=')), part.slice(part.indexOf('=') + 1)]));
  const hostName = String(fields.HostName);
  const token = SharedAccessSignature.create(hostName, String(fields.SharedAccessKeyName), String(fields.SharedAccessKey), Math.floor(Date.now() / 1000) + 600);
  const body = JSON.stringify(patch);
  return rawHttps({
    port: portOf(hostName),
    ca,
    method: 'PATCH',
    path: `/twins/${encodeURIComponent(deviceId)}?api-version=2021-04-12`,
    headers: { authorization: token.toString(), 'content-type': 'application/json; charset=utf-8', 'if-match': '*' },
    body,
  });
}

/** The twin the device itself reads through azure-iot-device on `hostName`. */
async function twinSeenByDevice(hostName: string, registrationId: string, credential: DeviceCredential) {
  const device = await connectToHub(hostName, registrationId, credential, ca);
  try {
    const twin = await device.client.getTwin();
    // The SDK's twin sections carry `$version` and an `update` function next to the properties.
    const strip = (section: Record<string, unknown>) =>
      Object.fromEntries(Object.entries({ ...section }).filter(([name, value]) => !name.startsWith('$') && typeof value !== 'function'));
    return { desired: strip(twin.properties.desired), reported: strip(twin.properties.reported) };
  } finally {
    await device.close();
  }
}

const POLICIES = {
  migrate: { updateHubAssignment: true, migrateDeviceData: true },
  reset: { updateHubAssignment: true, migrateDeviceData: false },
  never: { updateHubAssignment: false, migrateDeviceData: false },
} as const;

describe.each(Object.keys(POLICIES) as Array<keyof typeof POLICIES>)('reprovision policy %s', (policy) => {
  const registrationId = `reprovision-${policy}`;
  const key = generateSymmetricKey();
  const credential: DeviceCredential = { kind: 'symmetricKey', registrationId, key };

  test('first registration on hub A; the device reports, the operator changes desired and tags on hub A', async () => {
    await service.createOrUpdateIndividualEnrollment({
      registrationId,
      attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: generateSymmetricKey() } },
      iotHubs: [hub('hubA').hostName],
      reprovisionPolicy: POLICIES[policy],
      initialTwin: { tags: { stage: 'initial' }, properties: { desired: { interval: 10 } } },
    } as never);
    const first = await registerWithSdk('mqtt', endpoints, idScope, credential);
    expect(first).toMatchObject({ status: 'assigned', assignedHub: hub('hubA').hostName, substatus: 'initialAssignment' });

    const device = await connectToHub(first.assignedHub!, registrationId, credential, ca);
    try {
      expect(await device.desired()).toMatchObject({ interval: 10 });
      await device.reportProperties({ firmware: '1.0', policy });
    } finally {
      await device.close();
    }
    const patched = await patchTwinOnHub(hub('hubA').connectionString, registrationId, { tags: { owner: 'ops' }, properties: { desired: { interval: 99 } } });
    expect(patched.status).toBe(200);
    expect(await twinSeenByDevice(hub('hubA').hostName, registrationId, credential)).toEqual({
      desired: { interval: 99 },
      reported: { firmware: '1.0', policy },
    });
  });

  test('the enrollment moves to hub B; the device registers again and sees what the policy says', async () => {
    const { responseBody: enrollment } = await service.getIndividualEnrollment(registrationId);
    await service.createOrUpdateIndividualEnrollment({ ...enrollment, iotHubs: [hub('hubB').hostName] } as never);

    const second = await registerWithSdk('mqtt', endpoints, idScope, credential);
    const tagsOn = async (name: 'hubA' | 'hubB') => ((await hubTwin(hub(name).connectionString, ca, registrationId)).json as { tags?: unknown }).tags;
    switch (policy) {
      case 'migrate':
        expect(second).toMatchObject({ status: 'assigned', assignedHub: hub('hubB').hostName, substatus: 'deviceDataMigrated', deviceId: registrationId });
        // Reported and desired properties (and the tags) came along.
        expect(await twinSeenByDevice(hub('hubB').hostName, registrationId, credential)).toEqual({
          desired: { interval: 99 },
          reported: { firmware: '1.0', policy },
        });
        expect(await tagsOn('hubB')).toEqual({ stage: 'initial', owner: 'ops' });
        break;
      case 'reset':
        expect(second).toMatchObject({ status: 'assigned', assignedHub: hub('hubB').hostName, substatus: 'deviceDataReset', deviceId: registrationId });
        // The enrollment's initial twin, nothing reported.
        expect(await twinSeenByDevice(hub('hubB').hostName, registrationId, credential)).toEqual({ desired: { interval: 10 }, reported: {} });
        expect(await tagsOn('hubB')).toEqual({ stage: 'initial' });
        break;
      case 'never':
        expect(second).toMatchObject({ status: 'assigned', assignedHub: hub('hubA').hostName, substatus: 'initialAssignment', deviceId: registrationId });
        expect(await twinSeenByDevice(hub('hubA').hostName, registrationId, credential)).toEqual({
          desired: { interval: 99 },
          reported: { firmware: '1.0', policy },
        });
        expect(await tagsOn('hubA')).toEqual({ stage: 'initial', owner: 'ops' });
        break;
    }

    // Migrate and reset delete the device from the old hub; never leaves it there (and B never gets it).
    const [stays, gone] = policy === 'never' ? (['hubA', 'hubB'] as const) : (['hubB', 'hubA'] as const);
    expect((await hubTwin(hub(gone).connectionString, ca, registrationId)).status).toBe(404);
    expect(await server.hubs.get(gone.toLowerCase())!.getDevice(registrationId)).toBeUndefined();
    expect((await hubTwin(hub(stays).connectionString, ca, registrationId)).status).toBe(200);

    // The operator sees the device's new state through the service API.
    const { responseBody: state } = await service.getDeviceRegistrationState(registrationId);
    expect(state).toMatchObject({ status: 'assigned', assignedHub: hub(stays).hostName });
  });
});
