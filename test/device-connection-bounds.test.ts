/**
 * The bounds on device connections (request deadlines, refusals that end the connection, connection
 * limits) leave the unmodified SDK as it was: over Mqtt and MqttWs it still registers, and still
 * reports a wrong key as the service's 401; a certificate no enrollment trusts is refused at CONNECT.
 */
import { generateSymmetricKey, validateIndividualEnrollment } from '@opendps/model';
import { createLeaf, createRootCa } from '@opendps/pki';
import { enrollments } from '@opendps/store';
import { portOf, registerWithSdk, type DpsEndpoints, type DpsTransport } from './support/devices';
import { startOpenDps, type OpenDps } from './support/opendps';

let dps: OpenDps;
let endpoints: DpsEndpoints;
const key = generateSymmetricKey();

beforeAll(async () => {
  dps = await startOpenDps();
  endpoints = { mqttPort: portOf(dps.connection.endpoints.mqtt), httpsPort: portOf(dps.connection.endpoints.https), ca: dps.ca };
  const individuals = enrollments(dps.server.store, dps.connection.idScope);
  for (const transport of ['mqtt', 'mqttws']) {
    await individuals.put(
      validateIndividualEnrollment({
        registrationId: `bounds-${transport}`,
        attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: generateSymmetricKey() } },
      }),
    );
  }
});

afterAll(() => dps.stop());

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (error: { name?: string; result?: { errorCode?: number } }) => error,
  );

describe.each(['mqtt', 'mqttws'] as DpsTransport[])('the unmodified SDK over %s', (transport) => {
  const registrationId = `bounds-${transport}`;

  test('registers with the right key', async () => {
    const result = await registerWithSdk(transport, endpoints, dps.connection.idScope, { kind: 'symmetricKey', registrationId, key });
    expect(result).toMatchObject({ registrationId, status: 'assigned' });
  });

  test('reports a wrong key as UnauthorizedError with the 401 body, as before', async () => {
    const error = await failure(
      registerWithSdk(transport, endpoints, dps.connection.idScope, { kind: 'symmetricKey', registrationId, key: generateSymmetricKey() }),
    );
    expect(error?.name).toBe('UnauthorizedError');
    expect(error?.result?.errorCode).toBe(401002);
  });

  test('refuses an X.509 certificate no enrollment trusts at CONNECT (CONNACK 5, as DPS does): register() fails without hanging', async () => {
    const leaf = createLeaf(createRootCa({ commonName: 'bounds unknown root' }), { commonName: `bounds-x509-${transport}` });
    const error = await failure(
      registerWithSdk(transport, endpoints, dps.connection.idScope, {
        kind: 'x509',
        registrationId: `bounds-x509-${transport}`,
        cert: leaf.certificatePem,
        key: leaf.privateKeyPem,
      }),
    );
    // The SDK reports the refused CONNECT as a connection failure (mqtt.js's "Not authorized"; over
    // WebSockets the SDK wraps it as NotConnectedError), not as the service's 401 body.
    expect(error?.name).toMatch(/^(Error|NotConnectedError)$/);
    expect(error?.result).toBeUndefined();
    expect(String((error as { message?: string })?.message)).toMatch(/not authorized|connect/i);
  });
});
