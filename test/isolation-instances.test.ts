/**
 * Instance isolation end to end: two config-declared instances share every listener of one server.
 * Devices are told apart by ID scope (a device enrolled under A cannot register under B), service API
 * callers by the key that signed their token (B's key can neither read, delete nor overwrite A's
 * enrollments: 404, and what it writes lands in B). Quotas are per instance: A with a tiny
 * registration quota answers 429 with retry-after while B keeps registering.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { deriveDeviceKey } from '@opendps/attestation';
import { generateSymmetricKey, silentLogger, type ProvisioningInstance } from '@opendps/model';
import { createServer, instanceCollection, type RunningServer } from '@opendps/server';
import type { ProvisioningServiceClient } from 'azure-iot-provisioning-service';
import { deviceSas, httpsRegister, MqttDpsSession, portOf, registerWithSdk, type DpsEndpoints, type RawResponse } from './support/devices';
import { serviceClient } from './support/opendps';

type Name = 'alpha' | 'beta';

let server: RunningServer;
let dataDir: string;
let ca: string;
let endpoints: DpsEndpoints;
const scope = {} as Record<Name, string>;
const service = {} as Record<Name, ProvisioningServiceClient>;

const DEVICE = 'isolated-device';
const deviceKey = generateSymmetricKey();
const GROUP = 'isolation-group';
const groupKeys = { alpha: generateSymmetricKey(), beta: generateSymmetricKey() };
/** The server's clock: quota windows are counted on it, so a burst falls in one window and a wait is a step. */
let now = Date.now();

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'opendps-isolation-'));
  server = await createServer({
    dataDir,
    host: 'localhost',
    ports: { mqtt: 0, amqp: 0, https: 0, hub: 0 },
    logger: silentLogger,
    instanceRefreshMs: 100,
    clock: { now: () => now },
    instances: (['alpha', 'beta'] as const).map((name) => ({ name, linkedHubs: [{ name: `${name}-hub`, builtin: { port: 0 } }] })),
  });
  const { connection } = server;
  ca = readFileSync(server.caFile, 'utf8');
  endpoints = { mqttPort: portOf(connection.endpoints.mqtt), httpsPort: portOf(connection.endpoints.https), ca };
  for (const instance of connection.instances) {
    const name = instance.name as Name;
    scope[name] = instance.idScope;
    service[name] = serviceClient(instance.serviceConnectionString, connection.endpoints.https, ca);
    await service[name].createOrUpdateEnrollmentGroup({
      enrollmentGroupId: GROUP,
      attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: groupKeys[name], secondaryKey: generateSymmetricKey() } },
    } as never);
  }
  await service.alpha.createOrUpdateIndividualEnrollment({
    registrationId: DEVICE,
    attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: deviceKey, secondaryKey: generateSymmetricKey() } },
    initialTwin: { tags: { owner: 'alpha' } },
  } as never);
});

afterAll(async () => {
  await server?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

/** What a rejected service SDK call carried: HTTP status and the DPS errorCode of its body. */
async function refusal(call: Promise<unknown>): Promise<{ status: number | undefined; errorCode: number | undefined }> {
  const error = await call.then(
    () => undefined,
    (caught: Error & { response?: { statusCode?: number }; responseBody?: string }) => caught,
  );
  if (!error) throw new Error('The SDK call succeeded; a refusal was expected.');
  let errorCode: number | undefined;
  try {
    errorCode = (JSON.parse(error.responseBody ?? '') as { errorCode?: number }).errorCode;
  } catch {
    errorCode = undefined;
  }
  return { status: error.response?.statusCode, errorCode };
}

/** Keys come back from the attestation mechanism endpoint (a GET of the enrollment does not carry them). */
async function enrollmentPrimaryKey(name: Name, registrationId: string): Promise<string | undefined> {
  return (await service[name].getIndividualEnrollmentAttestationMechanism(registrationId)).responseBody.symmetricKey?.primaryKey;
}

async function groupPrimaryKey(name: Name): Promise<string | undefined> {
  return (await service[name].getEnrollmentGroupAttestationMechanism(GROUP)).responseBody.symmetricKey?.primaryKey;
}

/** A coded refusal: 401 or 404 with a six-digit errorCode that starts with the status. */
function expectCodedRefusal(status: number | undefined, errorCode: unknown): void {
  expect([401, 404]).toContain(status);
  expect(typeof errorCode).toBe('number');
  expect(String(errorCode).slice(0, 3)).toBe(String(status));
}

describe('devices are told apart by ID scope', () => {
  test('the device registers under its own scope, on its own instance hub', async () => {
    const result = await registerWithSdk('mqtt', endpoints, scope.alpha, { kind: 'symmetricKey', registrationId: DEVICE, key: deviceKey });
    expect(result).toMatchObject({ status: 'assigned', deviceId: DEVICE, assignedHub: server.connection.instances[0]!.linkedHubs[0]!.hostName });
  });

  test('under the other scope it is refused with a coded 401/404 (HTTPS, raw MQTT), and nothing is recorded there', async () => {
    // A SAS for B's resource, and A's genuine SAS sent to B's path.
    for (const authorization of [deviceSas(scope.beta, DEVICE, deviceKey), deviceSas(scope.alpha, DEVICE, deviceKey)]) {
      const reply = await httpsRegister(endpoints, scope.beta, DEVICE, { authorization });
      expectCodedRefusal(reply.status, reply.json?.errorCode);
    }
    const session = await MqttDpsSession.open({
      port: endpoints.mqttPort,
      ca,
      idScope: scope.beta,
      registrationId: DEVICE,
      password: deviceSas(scope.beta, DEVICE, deviceKey),
    });
    try {
      const answer = await session.register(DEVICE);
      expectCodedRefusal(answer.status, answer.body?.errorCode);
    } finally {
      await session.close(true);
    }
    await expect(
      registerWithSdk('mqtt', endpoints, scope.beta, { kind: 'symmetricKey', registrationId: DEVICE, key: deviceKey }),
    ).rejects.toBeInstanceOf(Error);

    expectCodedRefusal(...Object.values(await refusal(service.beta.getDeviceRegistrationState(DEVICE))) as [number, number]);
    expect(await server.hubs.get('beta-hub')!.getDevice(DEVICE)).toBeUndefined();
  });

  test("a device of B's group cannot use B's derived key under A's scope", async () => {
    const registrationId = 'group-device-of-beta';
    const key = deriveDeviceKey(groupKeys.beta, registrationId);
    const refused = await httpsRegister(endpoints, scope.alpha, registrationId, { authorization: deviceSas(scope.alpha, registrationId, key) });
    expectCodedRefusal(refused.status, refused.json?.errorCode);
    const accepted = await registerWithSdk('mqtt', endpoints, scope.beta, { kind: 'symmetricKey', registrationId, key });
    expect(accepted).toMatchObject({ status: 'assigned', assignedHub: server.connection.instances[1]!.linkedHubs[0]!.hostName });
  });
});

describe("service callers are told apart by their key: B's key never reaches A's data", () => {
  test("B's key cannot read A's enrollment or group (404)", async () => {
    expect(await refusal(service.beta.getIndividualEnrollment(DEVICE))).toEqual({ status: 404, errorCode: expect.any(Number) });
    expect(await refusal(service.beta.getIndividualEnrollmentAttestationMechanism(DEVICE))).toEqual({ status: 404, errorCode: expect.any(Number) });
    // Both instances have a group of this id: each key reads its own instance's keys.
    expect(await groupPrimaryKey('beta')).toBe(groupKeys.beta);
    expect(await groupPrimaryKey('alpha')).toBe(groupKeys.alpha);
  });

  test("B's key cannot delete A's enrollment (404); A's is still there", async () => {
    expect(await refusal(service.beta.deleteIndividualEnrollment(DEVICE))).toEqual({ status: 404, errorCode: expect.any(Number) });
    expect(await enrollmentPrimaryKey('alpha', DEVICE)).toBe(deviceKey);
  });

  test("what B's key writes lands in B, even under A's registration id; A's enrollment is untouched", async () => {
    const otherKey = generateSymmetricKey();
    await service.beta.createOrUpdateIndividualEnrollment({
      registrationId: DEVICE,
      attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: otherKey, secondaryKey: generateSymmetricKey() } },
    } as never);
    await service.beta.createOrUpdateIndividualEnrollment({
      registrationId: 'written-by-beta',
      attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: generateSymmetricKey(), secondaryKey: generateSymmetricKey() } },
    } as never);

    expect(await refusal(service.alpha.getIndividualEnrollment('written-by-beta'))).toEqual({ status: 404, errorCode: expect.any(Number) });
    expect(await enrollmentPrimaryKey('alpha', DEVICE)).toBe(deviceKey);
    expect(await enrollmentPrimaryKey('beta', DEVICE)).toBe(otherKey);

    // The device keeps registering under A with A's key; B's copy answers only to its own key.
    const underAlpha = await httpsRegister(endpoints, scope.alpha, DEVICE, { authorization: deviceSas(scope.alpha, DEVICE, deviceKey) });
    expect(underAlpha.status).toBe(200);
    const wrongKeyUnderBeta = await httpsRegister(endpoints, scope.beta, DEVICE, { authorization: deviceSas(scope.beta, DEVICE, deviceKey) });
    expectCodedRefusal(wrongKeyUnderBeta.status, wrongKeyUnderBeta.json?.errorCode);
  });
});

describe('quotas are per instance', () => {
  const setQuotas = async (name: Name, quotas: ProvisioningInstance['quotas'] | undefined): Promise<void> => {
    const collection = instanceCollection(server.store);
    const document = (await collection.get(name))!;
    const { quotas: _previous, ...rest } = document.value;
    await collection.put(name, quotas ? { ...rest, quotas } : rest, { ifMatch: document.etag });
    // The registration service reads the instance snapshot, refreshed from the store (100 ms here).
    const deadline = Date.now() + 5000;
    const current = () => server.instances().find((instance) => instance.name === name)?.quotas?.registrationsPerSecond;
    while (current() !== quotas?.registrationsPerSecond && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(current()).toBe(quotas?.registrationsPerSecond);
    // Each test starts at the beginning of a fresh one-second window.
    now = (Math.floor(now / 1000) + 1) * 1000;
  };

  afterAll(() => setQuotas('alpha', undefined));

  const register = (name: Name, n: number): Promise<RawResponse> => {
    const registrationId = `quota-${name}-${n}`;
    const key = deriveDeviceKey(groupKeys[name], registrationId);
    return httpsRegister(endpoints, scope[name], registrationId, { authorization: deviceSas(scope[name], registrationId, key) });
  };

  /** A burst of 12 HTTPS registrations to each instance at once. */
  const burst = async (): Promise<Record<Name, RawResponse[]>> => {
    const ids = Array.from({ length: 12 }, (_, n) => n);
    const [alpha, beta] = await Promise.all([Promise.all(ids.map((n) => register('alpha', n))), Promise.all(ids.map((n) => register('beta', n)))]);
    return { alpha, beta };
  };

  test('A with 2 registrations/s answers a burst with coded 429s; B, in the same burst, registers every device', async () => {
    await setQuotas('alpha', { registrationsPerSecond: 2 });
    const { alpha, beta } = await burst();
    expect(beta.map((reply) => [reply.status, reply.json?.status])).toEqual(beta.map(() => [200, 'assigned']));
    const throttled = alpha.filter((reply) => reply.status === 429);
    // The clock stands still: the whole burst is one window, and exactly two get through.
    expect(throttled).toHaveLength(10);
    for (const reply of alpha) expect([200, 429]).toContain(reply.status);
    for (const reply of throttled) expect(reply.json).toMatchObject({ errorCode: 429001 });
    for (const reply of throttled) expect(reply.headers['x-ms-error-code']).toBe('429001');
  });

  test('an HTTPS 429 carries a retry-after header in whole seconds (docs/service-rest.md §15; the Node SDK reads only the header)', async () => {
    await setQuotas('alpha', { registrationsPerSecond: 2 });
    const throttled = (await burst()).alpha.filter((reply) => reply.status === 429);
    expect(throttled).toHaveLength(10);
    // At the start of a window the rest of it is one whole second.
    for (const reply of throttled) expect(String(reply.headers['retry-after'])).toBe('1');
  });

  test('over MQTT the throttled answer carries retry-after in its response topic; after waiting that long, A admits a device again', async () => {
    await setQuotas('alpha', { registrationsPerSecond: 1 });
    const registrationId = 'quota-alpha-mqtt';
    const session = await MqttDpsSession.open({
      port: endpoints.mqttPort,
      ca,
      idScope: scope.alpha,
      registrationId,
      password: deviceSas(scope.alpha, registrationId, deriveDeviceKey(groupKeys.alpha, registrationId)),
    });
    try {
      let answer = await session.register(registrationId);
      for (let n = 0; answer.status !== 429 && n < 5; n++) answer = await session.register(registrationId);
      expect(answer.status).toBe(429);
      expect(answer.body).toMatchObject({ errorCode: 429001 });
      expect(answer.retryAfter).toBeGreaterThanOrEqual(1);
      // Still within the window: refused again. Once the clock has moved by retry-after: admitted.
      expect((await session.register(registrationId)).status).toBe(429);
      now += answer.retryAfter! * 1000;
      const admitted = await session.register(registrationId);
      expect([200, 202]).toContain(admitted.status);
    } finally {
      await session.close();
    }
  });
});
