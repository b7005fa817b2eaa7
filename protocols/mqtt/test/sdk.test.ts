import { ProvisioningDeviceClient } from 'azure-iot-provisioning-device';
import { Mqtt } from 'azure-iot-provisioning-device-mqtt';
import { MqttBase } from 'azure-iot-mqtt-base';
import { SymmetricKeySecurityClient } from 'azure-iot-security-symmetric-key';
import { assigned, ID_SCOPE, operationIdFor, ScriptedRegistration, startFrontEnd, testPki, type Running } from './helpers';

/** The unmodified Node device SDK against this front-end (docs/device-wire.md §7: injected MqttBase with our CA). */
describe('azure-iot-provisioning-device over MQTT', () => {
  let running: Running;
  const service = new ScriptedRegistration(
    async (request) => ({
      status: 202,
      retryAfterSeconds: 1,
      body: { operationId: operationIdFor(request.registrationId), status: 'assigning', registrationState: { registrationId: request.registrationId, status: 'assigning' } },
    }),
    async (request) => assigned(request.registrationId, request.operationId),
  );

  beforeAll(async () => {
    running = await startFrontEnd({ registration: service });
  });
  afterAll(() => running.close());

  test('register() resolves with the registrationState after a 202 and a poll', async () => {
    // `as never`: the SDK packages are distinct installed copies whose class types (private members) differ.
    const mqttBase = new MqttBase();
    mqttBase.setOptions({ ca: testPki().ca.certificatePem });
    const security = new SymmetricKeySecurityClient('sdk-dev-1', Buffer.alloc(32, 7).toString('base64'));
    const client = ProvisioningDeviceClient.create(`localhost:${running.port}`, ID_SCOPE, new Mqtt(mqttBase as never), security as never);
    client.setProvisioningPayload({ firmware: '1.0.0' });
    const result = await client.register();
    expect(result).toEqual(assigned('sdk-dev-1', operationIdFor('sdk-dev-1')).body.registrationState);

    expect(service.registered).toHaveLength(1);
    const request = service.registered[0]!;
    expect(request).toMatchObject({ idScope: ID_SCOPE, registrationId: 'sdk-dev-1', transport: 'mqtt', apiVersion: '2019-03-31', payload: { firmware: '1.0.0' } });
    expect(request.proof.kind === 'sas' && request.proof.token).toMatch(
      new RegExp(`^SharedAccessSignature sr=${ID_SCOPE}/registrations/sdk-dev-1&sig=[^&]+&skn=registration&se=\\d+$`),
    );
    expect(service.polled.map((poll) => poll.operationId)).toEqual([operationIdFor('sdk-dev-1')]);
  });
});
