import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BuiltInHub } from '@opendps/hub';
import { generateSymmetricKey, type ProvisioningInstance } from '@opendps/model';
import { DpsRegistrationService } from '@opendps/registration';
import { SqliteStore, enrollments } from '@opendps/store';
import { ProvisioningDeviceClient } from 'azure-iot-provisioning-device';
import { Mqtt } from 'azure-iot-provisioning-device-mqtt';
import { MqttBase } from 'azure-iot-mqtt-base';
import { SymmetricKeySecurityClient } from 'azure-iot-security-symmetric-key';
import { createDpsMqttFrontEnd, type DpsMqttFrontEnd } from '../src';
import { testPki } from './helpers';

/** Through the real registration service: SQLite store, symmetric-key attestation, a built-in hub. */
describe('DPS over MQTT with DpsRegistrationService', () => {
  const idScope = '0ne0000ABCD';
  const deviceKey = generateSymmetricKey();
  let dir: string;
  let store: SqliteStore;
  let hub: BuiltInHub;
  let frontEnd: DpsMqttFrontEnd;
  let port: number;

  beforeAll(async () => {
    const { server } = testPki();
    dir = mkdtempSync(join(tmpdir(), 'opendps-mqtt-'));
    store = new SqliteStore(join(dir, 'store.db'));
    hub = new BuiltInHub({ name: 'hub-1', host: 'localhost', port: 0, listenAddress: '127.0.0.1', tls: { cert: server.certificatePem, key: server.privateKeyPem }, store });
    await hub.start();
    const instance: ProvisioningInstance = {
      name: 'default',
      idScope,
      serviceHostName: 'localhost',
      policies: [],
      linkedHubs: [{ name: 'hub-1', hostName: hub.hostName, builtin: { port: hub.port }, allocationWeight: 1, applyAllocationPolicy: true }],
      allocationPolicy: 'hashed',
    };
    const registration = new DpsRegistrationService({ store, instances: () => [instance], hubs: { connector: () => hub } });
    await enrollments(store, idScope).put({
      registrationId: 'real-dev-1',
      attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: deviceKey, secondaryKey: generateSymmetricKey() } },
    });
    frontEnd = createDpsMqttFrontEnd({ registration });
    ({ port } = await frontEnd.listen({ port: 0, host: '127.0.0.1', tls: { cert: server.certificatePem, key: server.privateKeyPem } }));
  });

  afterAll(async () => {
    await frontEnd.close();
    await hub.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function sdkClient(registrationId: string, key: string): ReturnType<typeof ProvisioningDeviceClient.create> {
    // `as never`: the SDK packages are distinct installed copies whose class types (private members) differ.
    const mqttBase = new MqttBase();
    mqttBase.setOptions({ ca: testPki().ca.certificatePem });
    return ProvisioningDeviceClient.create(`localhost:${port}`, idScope, new Mqtt(mqttBase as never), new SymmetricKeySecurityClient(registrationId, key) as never);
  }

  test('the unmodified SDK is assigned to the built-in hub, which now has the device', async () => {
    const result = (await sdkClient('real-dev-1', deviceKey).register()) as { status: string; assignedHub: string; deviceId: string };
    expect(result).toMatchObject({ status: 'assigned', assignedHub: hub.hostName, deviceId: 'real-dev-1' });
    expect(await hub.getDevice('real-dev-1')).toBeDefined();
  });

  test('a wrong key is the service 401 with its coded body, fatal for the SDK', async () => {
    const error = await (sdkClient('real-dev-1', generateSymmetricKey()).register() as Promise<unknown>).then(() => undefined, (thrown: { name?: string; result?: { errorCode?: number } }) => thrown);
    expect(error?.name).toBe('UnauthorizedError');
    expect(error?.result?.errorCode).toBe(401002);
  });
});
