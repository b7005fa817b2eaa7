import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BuiltInHub } from '@opendps/hub';
import { Errors, generateSymmetricKey, validateIndividualEnrollment, type ProvisioningInstance } from '@opendps/model';
import { DpsRegistrationService, type RegistrationOutcome } from '@opendps/registration';
import { SqliteStore, enrollments } from '@opendps/store';
import { Http as HttpBase } from 'azure-iot-http-base';
import { ProvisioningDeviceClient, type RegistrationResult } from 'azure-iot-provisioning-device';
import { Http } from 'azure-iot-provisioning-device-http';
import { SymmetricKeySecurityClient } from 'azure-iot-security-symmetric-key';
import { createDeviceApi } from '../src';
import { ScriptedRegistration, pki, request, startServer, type TestServer } from './support';

const SCOPE = '0ne00000A0A';

/**
 * The unmodified Node device SDK over HTTPS (docs/device-wire.md §7): the provisioning host cannot
 * carry a port, so an azure-iot-http-base `Http` is injected with an agent that names our port.
 */
function sdkClient(server: TestServer, registrationId: string, key: string) {
  const httpBase = new HttpBase();
  httpBase.setOptions({ ca: server.ca, http: { agent: new https.Agent({ port: server.port, ca: server.ca }) } });
  // The packages resolve slightly different azure-iot-common/http-base patch versions: same shape, distinct types.
  const transport = new Http(httpBase as unknown as ConstructorParameters<typeof Http>[0]);
  transport.setTransportOptions({ pollingInterval: 100 });
  const security = new SymmetricKeySecurityClient(registrationId, key) as unknown as Parameters<typeof ProvisioningDeviceClient.create>[3];
  const client = ProvisioningDeviceClient.create('localhost', SCOPE, transport, security);
  return { register: (): Promise<RegistrationResult> => client.register() as Promise<RegistrationResult> };
}

/** azure-iot-http-base fails a request with status >= 300 carrying the raw response and its body. */
function expectRefusal(error: unknown, errorCode: number): void {
  const failure = error as { name?: string; response?: { statusCode?: number }; responseBody?: string };
  expect(failure.name).toBe('UnauthorizedError');
  expect(failure.response?.statusCode).toBe(Math.floor(errorCode / 1000));
  expect(JSON.parse(failure.responseBody ?? '{}')).toMatchObject({ errorCode });
}

describe('the unmodified device SDK against a scripted registration service', () => {
  let server: TestServer;
  const service = new ScriptedRegistration();

  beforeAll(async () => {
    server = await startServer([createDeviceApi({ registration: service })]);
  });
  afterAll(() => server.close());

  it('resolves with the registrationState after 202, one poll, then 200', async () => {
    const registrationState = {
      registrationId: 'sdk-dev-1',
      status: 'assigned' as const,
      assignedHub: 'localhost:8884',
      deviceId: 'sdk-dev-1',
      createdDateTimeUtc: '2024-01-01T00:00:00.0000000Z',
      lastUpdatedDateTimeUtc: '2024-01-01T00:00:01.0000000Z',
    };
    service.onRegister = (): RegistrationOutcome => ({
      status: 202,
      retryAfterSeconds: 1,
      body: { operationId: '4.a.op-sdk', status: 'assigning', registrationState: { registrationId: 'sdk-dev-1', status: 'assigning' } },
    });
    service.onOperationStatus = (): RegistrationOutcome => ({ status: 200, body: { operationId: '4.a.op-sdk', status: 'assigned', registrationState } });

    const started = Date.now();
    const result = await sdkClient(server, 'sdk-dev-1', generateSymmetricKey()).register();

    expect(result).toEqual(registrationState);
    // The SDK waited for our retry-after (1 s), not its own 100 ms polling interval.
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(service.calls.map((call) => call.method)).toEqual(['register', 'operationStatus']);
    const [register, poll] = service.calls;
    expect(register?.request).toMatchObject({ idScope: SCOPE, registrationId: 'sdk-dev-1', transport: 'https', apiVersion: '2019-03-31' });
    const token = register?.request.proof.kind === 'sas' ? register.request.proof.token : '';
    expect(token).toMatch(new RegExp(`^SharedAccessSignature sr=${SCOPE}/registrations/sdk-dev-1&sig=[^&]+&skn=registration&se=\\d+$`));
    expect(poll?.request).toMatchObject({ operationId: '4.a.op-sdk', proof: { kind: 'sas', token } });
  });

  it('fails register() with the coded error of a refusal', async () => {
    service.calls.length = 0;
    service.onRegister = () => {
      throw Errors.invalidSignature();
    };
    const error = await sdkClient(server, 'sdk-dev-2', generateSymmetricKey()).register().catch((caught: unknown) => caught);
    expectRefusal(error, 401002);
  });
});

describe('the unmodified device SDK through the real registration service', () => {
  let dir: string;
  let store: SqliteStore;
  let server: TestServer;
  let hub: BuiltInHub;
  let instance: ProvisioningInstance;
  const key = generateSymmetricKey();
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'opendps-http-'));
    store = new SqliteStore(path.join(dir, 'opendps.db'));
    const { server: tls } = pki();
    hub = new BuiltInHub({ name: 'hub-1', host: 'localhost', port: 0, listenAddress: '127.0.0.1', tls: { cert: tls.certificatePem, key: tls.privateKeyPem }, store });
    await hub.start();
    instance = {
      name: 'default',
      idScope: SCOPE,
      serviceHostName: 'localhost',
      policies: [],
      linkedHubs: [{ name: 'hub-1', hostName: hub.hostName, builtin: { port: hub.port }, allocationWeight: 1, applyAllocationPolicy: true }],
      allocationPolicy: 'hashed',
    };
    await enrollments(store, SCOPE).put(
      validateIndividualEnrollment({
        registrationId: 'real-dev-1',
        attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: generateSymmetricKey() } },
        initialTwin: { tags: { site: 'lab' } },
      }),
    );
    const registration = new DpsRegistrationService({
      store,
      instances: () => [instance],
      hubs: { connector: () => hub },
      // Always 202 first, so the SDK polls as it does against real DPS.
      answerWithinMs: 0,
      retryAfterSeconds: 1,
    });
    server = await startServer([createDeviceApi({ registration })]);
  });
  afterAll(async () => {
    await server.close();
    await hub.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('registers after 202 and a poll, and the status lookup then finds the registration', async () => {
    const started = Date.now();
    const result = await sdkClient(server, 'real-dev-1', key).register();
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(result).toMatchObject({ registrationId: 'real-dev-1', status: 'assigned', assignedHub: hub.hostName, deviceId: 'real-dev-1' });
    expect((await hub.getDevice('real-dev-1'))?.twin.tags).toEqual({ site: 'lab' });

    // The spec's POST status lookup (Node never sends it): signed the same way, with the SDK's own token.
    const token = await new Promise<string>((resolve, reject) =>
      new SymmetricKeySecurityClient('real-dev-1', key).createSharedAccessSignature(SCOPE, (error, sas) =>
        error || !sas ? reject(error) : resolve(sas.toString()),
      ),
    );
    const lookup = await request(server, {
      method: 'POST',
      path: `/${SCOPE}/registrations/real-dev-1?api-version=2021-06-01`,
      headers: { authorization: token, 'content-type': 'application/json; charset=utf-8' },
      body: '{"registrationId":"real-dev-1"}',
    });
    expect(lookup.status).toBe(200);
    expect(lookup.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(lookup.json).toMatchObject({ registrationId: 'real-dev-1', status: 'assigned', assignedHub: hub.hostName });
  });

  it('refuses a device with the wrong key with the coded 401', async () => {
    const error = await sdkClient(server, 'real-dev-1', generateSymmetricKey()).register().catch((caught: unknown) => caught);
    expectRefusal(error, 401002);
  });

  it('answers an unknown ID scope with the coded 404', async () => {
    const reply = await request(server, {
      method: 'PUT',
      path: '/0ne99999999/registrations/real-dev-1/register?api-version=2019-03-31',
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: '{"registrationId":"real-dev-1"}',
    });
    expect(reply.status).toBe(404);
    expect(reply.headers['x-ms-error-code']).toBe('404205');
  });
});
