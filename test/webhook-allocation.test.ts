/**
 * Custom allocation end to end: a real HTTPS webhook in this process (certificate from @opendps/pki,
 * trusted by the server through the config's `webhookCaFile`), the composed server with two built-in
 * hubs, and the unmodified device SDK (Mqtt) sending a provisioning payload. The webhook sees the
 * AllocationRequest (enrollment without keys, runtime context with the payload, linked hub host
 * names) and answers a hub, an initial twin and a payload; the device gets the payload back, lands
 * on that hub and reads the webhook's twin there. Failures (timeout, HTTP 500, a malformed answer, a
 * hub that is not linked) leave the registration `failed` with a numeric errorCode.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chooseHashed } from '@opendps/allocation';
import { generateSymmetricKey, silentLogger } from '@opendps/model';
import type { OperationRecord } from '@opendps/registration';
import { createRootCa, createServerCertificate } from '@opendps/pki';
import { createServer, type RunningServer } from '@opendps/server';
import { ProvisioningDeviceClient, type RegistrationResult } from 'azure-iot-provisioning-device';
import type { ProvisioningServiceClient } from 'azure-iot-provisioning-service';
import { SymmetricKeySecurityClient } from 'azure-iot-security-symmetric-key';
import {
  connectToHub,
  deviceSas,
  httpsRegister,
  hubTwin,
  portOf,
  provisioningTransport,
  rawHttps,
  type DpsEndpoints,
  type RawResponse,
} from './support/devices';
import { serviceClient } from './support/opendps';

/** What the webhook received: one entry per HTTP request (so retries show up). */
interface WebhookCall {
  method: string;
  url: string;
  contentType: string | undefined;
  body: Record<string, unknown>;
}

const webhookCa = createRootCa({ commonName: 'Webhook test CA' });
const webhookCert = createServerCertificate(webhookCa, ['localhost', '127.0.0.1']);
const calls: WebhookCall[] = [];
/** What the webhook answers for the hub it was told to choose; by registration id. */
const chosenHub = new Map<string, string>();
/** `slow-` devices: the webhook answers when the test calls the release stored here. */
const heldAnswers = new Map<string, () => void>();
/** The server's clock: leases are compared with it, and the test moves it. */
let now = Date.now();
/** A lease far shorter than the default 30 s, so its renewal timer runs within the test. */
const LEASE_MS = 300;

let webhook: https.Server;
let webhookUrl: string;
let server: RunningServer;
let dataDir: string;
let ca: string;
let endpoints: DpsEndpoints;
let idScope: string;
let service: ProvisioningServiceClient;
let hubHosts: string[];

/**
 * The webhook's behaviour is chosen by the device's registration id prefix: `ok-` answers the hub in
 * `chosenHub`, `status500-` answers HTTP 500, `malformed-` answers text that is not JSON,
 * `unknownhub-` names a hub that is not linked, `hang-` never answers.
 */
function onAllocationRequest(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    calls.push({ method: req.method ?? '', url: req.url ?? '', contentType: req.headers['content-type'], body });
    const context = body.deviceRuntimeContext as { registrationId: string; payload?: unknown };
    const id = context.registrationId;
    const json = (status: number, value: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(value));
    };
    if (id.startsWith('ok-') || id.startsWith('slow-')) {
      const answer = () =>
        json(200, {
        iotHubHostName: chosenHub.get(id),
          initialTwin: { tags: { source: 'webhook', region: 'eu' }, properties: { desired: { from: 'webhook', interval: 42 } } },
          payload: { greeting: 'hello device', echo: context.payload ?? null },
        });
      if (id.startsWith('slow-')) heldAnswers.set(id, answer);
      else answer();
    } else if (id.startsWith('status500-')) json(500, { message: 'the allocation function crashed' });
    else if (id.startsWith('malformed-')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"iotHubHostName": ');
    } else if (id.startsWith('unknownhub-')) json(200, { iotHubHostName: 'not-linked.azure-devices.net' });
    else if (!id.startsWith('hang-')) json(400, { message: `unexpected device ${id}` });
  });
}

beforeAll(async () => {
  webhook = https.createServer({ cert: webhookCert.certificatePem, key: webhookCert.privateKeyPem }, onAllocationRequest);
  await new Promise<void>((resolve) => webhook.listen(0, resolve));
  webhookUrl = `https://localhost:${(webhook.address() as AddressInfo).port}/api/allocate?code=function-key-123`;

  dataDir = mkdtempSync(path.join(tmpdir(), 'opendps-webhook-'));
  const webhookCaFile = path.join(dataDir, 'webhook-ca.pem');
  writeFileSync(webhookCaFile, webhookCa.certificatePem);
  server = await createServer({
    dataDir,
    host: 'localhost',
    ports: { mqtt: 0, amqp: 0, https: 0, hub: 0 },
    logger: silentLogger,
    instanceRefreshMs: 100,
    instances: [{ name: 'webhooks', linkedHubs: ['hubA', 'hubB'].map((name) => ({ name, builtin: { port: 0 } })) }],
    webhookCaFile,
    clock: { now: () => now },
    // A short lease: the webhook's retries, back-off and timeouts all outlast it, and a device's poll
    // must still never take over the live operation and call the webhook again. Attempts of 2 s (not
    // 10) and a 10 ms back-off keep the timeout case short; the attempt count stays the default 3.
    timeouts: { operationLeaseMs: LEASE_MS, webhookAttemptMs: 2000, webhookBackoffMs: 10, answerWithinMs: 500 },
  });
  const { connection } = server;
  ca = readFileSync(server.caFile, 'utf8');
  endpoints = { mqttPort: portOf(connection.endpoints.mqtt), httpsPort: portOf(connection.endpoints.https), ca };
  idScope = connection.idScope;
  hubHosts = connection.instances[0]!.linkedHubs.map((hub) => hub.hostName);
  service = serviceClient(connection.serviceConnectionString, connection.endpoints.https, ca);
});

afterAll(async () => {
  await server?.stop();
  webhook?.closeAllConnections();
  await new Promise((resolve) => webhook?.close(resolve));
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

/** An individual symmetric-key enrollment with allocationPolicy custom; returns the device key. */
async function enrollCustom(registrationId: string): Promise<string> {
  const key = generateSymmetricKey();
  await service.createOrUpdateIndividualEnrollment({
    registrationId,
    attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: generateSymmetricKey() } },
    allocationPolicy: 'custom',
    customAllocationDefinition: { webhookUrl, apiVersion: '2019-03-31' },
    initialTwin: { tags: { source: 'enrollment' }, properties: { desired: { from: 'enrollment' } } },
  } as never);
  return key;
}

/** The unmodified SDK over Mqtt, with a provisioning payload when given. */
function registerWithPayload(registrationId: string, key: string, payload?: Record<string, unknown>): Promise<RegistrationResult> {
  const { host, transport } = provisioningTransport('mqtt', endpoints);
  const client = ProvisioningDeviceClient.create(host, idScope, transport as never, new SymmetricKeySecurityClient(registrationId, key) as never);
  if (payload) client.setProvisioningPayload(payload);
  return client.register() as Promise<RegistrationResult>;
}

/**
 * azure-iot-common's DeviceRegistrationFailedError names itself this; the provisioning SDK throws it
 * from its own copy of azure-iot-common, so `instanceof` against ours cannot work.
 */
const FAILED_ERROR_NAME = 'ProvisioningRegistrationFailedError';

/** The SDK's DeviceRegistrationFailedError for a `failed` registration, with `.result`. */
async function sdkFailure(registrationId: string, key: string): Promise<{ error: Error; state: Record<string, unknown> | undefined }> {
  const error = await registerWithPayload(registrationId, key).then(
    () => undefined,
    (caught: Error & { result?: { status?: string; registrationState?: Record<string, unknown> } }) => caught,
  );
  if (!error) throw new Error(`${registrationId} registered; a failure was expected`);
  expect(error.result?.status).toBe('failed');
  return { error, state: error.result?.registrationState };
}

const callsFor = (registrationId: string): WebhookCall[] =>
  calls.filter((call) => (call.body.deviceRuntimeContext as { registrationId?: string }).registrationId === registrationId);

/** One raw HTTPS operation status poll. */
function pollRaw(registrationId: string, key: string, operationId: unknown): Promise<RawResponse> {
  return rawHttps({
    port: endpoints.httpsPort,
    ca,
    method: 'GET',
    path: `/${idScope}/registrations/${registrationId}/operations/${String(operationId)}?api-version=2019-03-31`,
    headers: { authorization: deviceSas(idScope, registrationId, key), accept: 'application/json' },
  });
}

/** Register over raw HTTPS and poll while `assigning` (up to `seconds`). */
async function registerRaw(registrationId: string, key: string, seconds: number): Promise<RawResponse> {
  let reply = await httpsRegister(endpoints, idScope, registrationId, { authorization: deviceSas(idScope, registrationId, key) });
  const deadline = Date.now() + seconds * 1000;
  while (reply.json?.status === 'assigning' && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    reply = await pollRaw(registrationId, key, reply.json.operationId);
  }
  return reply;
}

/** Resolves once the in-flight operation's lease runs past `after` on the server's clock (its renewal ran). */
async function leaseRenewedPast(operationId: string, after: number): Promise<void> {
  const operations = server.store.collection<OperationRecord>(idScope, 'operations');
  for (const deadline = Date.now() + 10_000; ; ) {
    const record = (await operations.get(operationId))?.value;
    if (record?.status === 'assigning' && record.lease.expiresAt > after) return;
    if (Date.now() > deadline) throw new Error(`the lease of ${operationId} was not renewed`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('success: the webhook sees the AllocationRequest; the device gets its payload back, lands on the chosen hub and reads the webhook twin', async () => {
  const registrationId = 'ok-device-1';
  const key = await enrollCustom(registrationId);
  // The webhook picks the hub the weighted hash would not: only the webhook can send the device there.
  const hashed = chooseHashed(server.instances()[0]!.linkedHubs, registrationId).hostName;
  const target = hubHosts.find((host) => host !== hashed)!;
  chosenHub.set(registrationId, target);
  const payload = { modelId: 'dtmi:opendps:thermostat;1', site: 'plant-7' };

  const result = await registerWithPayload(registrationId, key, payload);
  expect(result).toMatchObject({ status: 'assigned', assignedHub: target, deviceId: registrationId, substatus: 'initialAssignment' });
  expect(result.payload).toEqual({ greeting: 'hello device', echo: payload });

  const [call, ...more] = callsFor(registrationId);
  expect(more).toHaveLength(0);
  expect(call).toMatchObject({ method: 'POST', url: '/api/allocate?code=function-key-123', contentType: expect.stringMatching(/^application\/json/) });
  expect(call!.body).toMatchObject({
    individualEnrollment: { registrationId, allocationPolicy: 'custom', attestation: { type: 'symmetricKey' } },
    deviceRuntimeContext: { registrationId, symmetricKey: {}, payload },
  });
  expect(call!.body).not.toHaveProperty('enrollmentGroup');
  expect(call!.body.deviceRuntimeContext).not.toHaveProperty('currentIotHubHostName');
  expect([...(call!.body.linkedHubs as string[])].sort()).toEqual([...hubHosts].sort());
  // The enrollment's keys never leave the service.
  expect(JSON.stringify(call!.body)).not.toContain(key);
  expect(call!.body.individualEnrollment).not.toHaveProperty('attestation.symmetricKey.primaryKey');

  const device = await connectToHub(result.assignedHub!, result.deviceId!, { kind: 'symmetricKey', registrationId, key }, ca);
  try {
    const desired = await device.desired();
    expect(desired).toMatchObject({ from: 'webhook', interval: 42 });
  } finally {
    await device.close();
  }
  const hubName = server.connection.instances[0]!.linkedHubs.find((hub) => hub.hostName === target)!;
  const twin = await hubTwin(hubName.connectionString!, ca, registrationId);
  expect(twin.status).toBe(200);
  expect(twin.json).toMatchObject({ tags: { source: 'webhook', region: 'eu' }, properties: { desired: { from: 'webhook', interval: 42 } } });
  const other = server.connection.instances[0]!.linkedHubs.find((hub) => hub.hostName !== target)!;
  expect((await hubTwin(other.connectionString!, ca, registrationId)).status).toBe(404);

  // Registering again tells the webhook where the device is now.
  const again = await registerWithPayload(registrationId, key, payload);
  expect(again.assignedHub).toBe(target);
  expect(callsFor(registrationId)[1]?.body.deviceRuntimeContext).toMatchObject({ registrationId, currentIotHubHostName: target, currentDeviceId: registrationId });
});

test('a webhook slower than the operation lease is called once; the polling device is assigned where it said', async () => {
  const registrationId = 'slow-device-1';
  const key = await enrollCustom(registrationId);
  const target = hubHosts[1]!;
  chosenHub.set(registrationId, target);
  const first = await httpsRegister(endpoints, idScope, registrationId, { authorization: deviceSas(idScope, registrationId, key) });
  expect(first.json).toMatchObject({ status: 'assigning' });
  const operationId = String(first.json?.operationId);
  // Several leases pass on the server's clock while the webhook holds its answer; each time the
  // node renews its lease, and a poll finds the operation still its own.
  for (let lease = 0; lease < 3; lease++) {
    now += 2 * LEASE_MS;
    await leaseRenewedPast(operationId, now);
    expect((await pollRaw(registrationId, key, operationId)).json).toMatchObject({ status: 'assigning' });
  }
  expect(callsFor(registrationId)).toHaveLength(1);
  heldAnswers.get(registrationId)!();
  let reply = await pollRaw(registrationId, key, operationId);
  for (const deadline = Date.now() + 10_000; reply.json?.status === 'assigning' && Date.now() < deadline; ) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    reply = await pollRaw(registrationId, key, operationId);
  }
  expect(reply.json).toMatchObject({
    status: 'assigned',
    registrationState: { assignedHub: target, substatus: 'initialAssignment', payload: { greeting: 'hello device', echo: null } },
  });
  expect(callsFor(registrationId)).toHaveLength(1);
});

describe('failures leave the registration failed with a numeric errorCode', () => {
  /**
   * The timeout takes the client's full budget (3 attempts, with back-off between them), so this
   * device starts first and the other cases run meanwhile; the last test collects it.
   */
  let hanging: Promise<RawResponse | Error>;
  const hangId = 'hang-device-1';

  beforeAll(async () => {
    const key = await enrollCustom(hangId);
    hanging = registerRaw(hangId, key, 30).catch((error: Error) => error);
  });

  test('HTTP 500 (retried): the SDK throws DeviceRegistrationFailedError with the failed state, after three attempts', async () => {
    const registrationId = 'status500-device-1';
    const key = await enrollCustom(registrationId);
    const failure = await sdkFailure(registrationId, key);
    expect(failure.error.name).toBe(FAILED_ERROR_NAME);
    expect(failure.state).toMatchObject({ registrationId, status: 'failed', errorCode: 502201 });
    expect(callsFor(registrationId)).toHaveLength(3);
  });

  test('a malformed answer (not JSON): failed, not retried', async () => {
    const registrationId = 'malformed-device-1';
    const key = await enrollCustom(registrationId);
    const failure = await sdkFailure(registrationId, key);
    expect(failure.error.name).toBe(FAILED_ERROR_NAME);
    expect(failure.state).toMatchObject({ registrationId, status: 'failed', errorCode: 502202 });
    expect(callsFor(registrationId)).toHaveLength(1);
  });

  test('a hub that is not linked: failed (no hub for the device)', async () => {
    const registrationId = 'unknownhub-device-1';
    const key = await enrollCustom(registrationId);
    const failure = await sdkFailure(registrationId, key);
    expect(failure.error.name).toBe(FAILED_ERROR_NAME);
    expect(failure.state).toMatchObject({ registrationId, status: 'failed', errorCode: 400208 });
    expect(callsFor(registrationId)).toHaveLength(1);
    for (const hub of server.connection.instances[0]!.linkedHubs) {
      expect((await hubTwin(hub.connectionString!, ca, registrationId)).status).toBe(404);
    }
  });

  test('a webhook that never answers: the raw HTTPS poll ends failed (timeout) after three attempts', async () => {
    const reply = await hanging;
    if (reply instanceof Error) throw reply;
    expect(reply.status).toBe(200);
    expect(reply.json).toMatchObject({ status: 'failed', registrationState: { registrationId: hangId, status: 'failed', errorCode: 504201 } });
    expect(typeof (reply.json?.registrationState as { errorMessage?: unknown }).errorMessage).toBe('string');
    expect(callsFor(hangId)).toHaveLength(3);
    // The operator sees the same state through the service API.
    const { responseBody } = await service.getDeviceRegistrationState(hangId);
    expect(responseBody).toMatchObject({ registrationId: hangId, status: 'failed', errorCode: 504201 });
  });
});

describe('webhook URLs the server will not call are refused when the enrollment is written', () => {
  test.each([
    'http://169.254.169.254/latest/meta-data/iam/security-credentials/',
    'https://169.254.169.254/latest/meta-data/',
    'https://[fd00:ec2::254]/latest/meta-data/',
    'http://fn.example.com/api/allocate',
  ])('%s: 400 with a DPS error code through the service SDK, and nothing stored', async (url) => {
    const registrationId = `refused-${calls.length}-${url.length}`;
    const refused = await service
      .createOrUpdateIndividualEnrollment({
        registrationId,
        attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: generateSymmetricKey(), secondaryKey: generateSymmetricKey() } },
        allocationPolicy: 'custom',
        customAllocationDefinition: { webhookUrl: url, apiVersion: '2019-03-31' },
      } as never)
      .then(
        () => undefined,
        (error: Error & { response?: { statusCode?: number }; responseBody?: string }) => error,
      );
    expect(refused?.response?.statusCode).toBe(400);
    expect(JSON.parse(refused?.responseBody ?? '{}')).toMatchObject({ errorCode: 400012, trackingId: expect.any(String) });
    const lookup = await service.getIndividualEnrollment(registrationId).then(
      () => 200,
      (error: Error & { response?: { statusCode?: number } }) => error.response?.statusCode,
    );
    expect(lookup).toBe(404);
  });

  test('http:// to loopback is accepted on this localhost server (the development default)', async () => {
    const written = await service.createOrUpdateIndividualEnrollment({
      registrationId: 'local-http-webhook',
      attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: generateSymmetricKey(), secondaryKey: generateSymmetricKey() } },
      allocationPolicy: 'custom',
      customAllocationDefinition: { webhookUrl: 'http://localhost:7071/api/allocate', apiVersion: '2019-03-31' },
    } as never);
    expect(written.responseBody).toMatchObject({ registrationId: 'local-http-webhook' });
  });
});
