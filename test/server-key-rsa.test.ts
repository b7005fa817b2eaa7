/**
 * `--server-key-type rsa`: the unmodified Azure SDKs register over every DPS transport and reach
 * the built-in hub when the server certificate has an RSA-2048 key (the default is P-256, which the
 * other suites cover).
 */
import { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import { generateSymmetricKey } from '@opendps/model';
import type { ProvisioningServiceClient } from 'azure-iot-provisioning-service';
import { DPS_TRANSPORTS, connectToHub, portOf, registerWithSdk, type DpsEndpoints } from './support/devices';
import { serviceClient, startOpenDps, type OpenDps } from './support/opendps';

let dps: OpenDps;
let service: ProvisioningServiceClient;
let endpoints: DpsEndpoints;

beforeAll(async () => {
  dps = await startOpenDps({ serverKeyType: 'rsa' });
  const { connection } = dps;
  endpoints = { mqttPort: portOf(connection.endpoints.mqtt), httpsPort: portOf(connection.endpoints.https), ca: dps.ca };
  service = serviceClient(connection.serviceConnectionString, connection.endpoints.https, dps.ca);
});

afterAll(() => dps?.stop());

test('the listeners present an RSA-2048 certificate', async () => {
  const socket = connect({ port: endpoints.mqttPort, host: '127.0.0.1', servername: 'localhost', ca: dps.ca });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  const certificate = socket.getPeerX509Certificate() as X509Certificate;
  socket.destroy();
  expect(certificate.publicKey.asymmetricKeyType).toBe('rsa');
  expect(certificate.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
});

test.each(DPS_TRANSPORTS)('a symmetric-key device registers over %s and reads its twin from the hub', async (transport) => {
  const registrationId = `rsa-${transport}`;
  const key = generateSymmetricKey();
  await service.createOrUpdateIndividualEnrollment({
    registrationId,
    attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: generateSymmetricKey() } },
    initialTwin: { properties: { desired: { keyType: 'rsa' } } },
  } as never);
  const credential = { kind: 'symmetricKey' as const, registrationId, key };
  const result = await registerWithSdk(transport, endpoints, dps.connection.idScope, credential);
  expect(result.deviceId).toBe(registrationId);
  const hub = await connectToHub(result.assignedHub, result.deviceId, credential, dps.ca);
  try {
    expect(await hub.desired()).toMatchObject({ keyType: 'rsa' });
  } finally {
    await hub.close();
  }
});
