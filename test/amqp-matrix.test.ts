/**
 * The AMQP columns of the device matrix against the composed OpenDPS server: the unmodified
 * azure-iot-provisioning-device-amqp transports `Amqp` and `AmqpWs` x every attestation (symmetric
 * key individual and group-derived, X.509 individual and group through an intermediate).
 * Enrollments are written with the unmodified service SDK. Each device registers in a child process
 * (the Amqp transport takes no CA, so the dev CA is trusted through NODE_EXTRA_CA_CERTS, which Node
 * reads only at start; docs/device-wire.md §7), then connects to its assigned built-in hub with
 * azure-iot-device over MQTT, reads the desired properties of its enrollment's initial twin, sends
 * telemetry the hub counts, and reports properties the hub's REST API then shows.
 */
import { execFile } from 'node:child_process';
import { deriveDeviceKey } from '@opendps/attestation';
import { generateSymmetricKey } from '@opendps/model';
import { createIntermediateCa, createLeaf, createRootCa } from '@opendps/pki';
import type { ProvisioningServiceClient } from 'azure-iot-provisioning-service';
import { connectToHub, hubTwin, portOf, type DeviceCredential } from './support/devices';
import { serviceClient, startOpenDps, type OpenDps } from './support/opendps';

type AmqpTransport = 'amqp' | 'amqpws';
const TRANSPORTS: readonly AmqpTransport[] = ['amqp', 'amqpws'];
type Attestation = 'symmetric key individual' | 'symmetric key group' | 'x509 individual' | 'x509 group';
const ATTESTATIONS: readonly Attestation[] = ['symmetric key individual', 'symmetric key group', 'x509 individual', 'x509 group'];

/**
 * Runs in the child (cwd: this package, whose node_modules hold the SDK): one register() with the
 * unmodified ProvisioningDeviceClient. Amqp takes the port in the host; AmqpWs hard-codes :443, so
 * its own `webSocketAgent` transport option names our HTTPS port. Prints one JSON line.
 */
const DEVICE_SCRIPT = `
const https = require('node:https');
const { ProvisioningDeviceClient } = require('azure-iot-provisioning-device');
const { Amqp, AmqpWs } = require('azure-iot-provisioning-device-amqp');
const { SymmetricKeySecurityClient } = require('azure-iot-security-symmetric-key');
const { X509Security } = require('azure-iot-security-x509');
const o = JSON.parse(process.argv[1]);
const transport = o.transport === 'amqpws' ? new AmqpWs() : new Amqp();
transport.setTransportOptions({ pollingInterval: 200 });
if (o.transport === 'amqpws') transport.setTransportOptions({ webSocketAgent: new https.Agent({ port: o.httpsPort, ca: o.ca }) });
const host = o.transport === 'amqpws' ? 'localhost' : 'localhost:' + o.amqpPort;
const c = o.credential;
const security = c.kind === 'symmetricKey' ? new SymmetricKeySecurityClient(c.registrationId, c.key) : new X509Security(c.registrationId, { cert: c.cert, key: c.key });
const timer = setTimeout(() => { console.log(JSON.stringify({ error: { name: 'Timeout', message: 'register() did not settle in 15 s' } })); process.exit(0); }, 15000);
ProvisioningDeviceClient.create(host, o.idScope, transport, security).register((error, result) => {
  clearTimeout(timer);
  console.log(JSON.stringify(error ? { error: { name: error.name, message: String(error.message) } } : { result }));
  process.exit(0);
});
`;

interface DeviceRun {
  result?: { registrationId?: string; status?: string; assignedHub?: string; deviceId?: string; symmetricKey?: unknown; x509?: unknown };
  error?: { name?: string; message?: string };
}

const SK_GROUP = 'amqp-matrix-sk-group';
const X509_GROUP = 'amqp-matrix-x509-group';
const groupKey = generateSymmetricKey();
const deviceRoot = createRootCa({ commonName: 'AMQP matrix device root' });
const intermediate = createIntermediateCa(deviceRoot, { commonName: 'AMQP matrix device intermediate' });

let dps: OpenDps;
let service: ProvisioningServiceClient;

beforeAll(async () => {
  dps = await startOpenDps();
  const { connection } = dps;
  service = serviceClient(connection.serviceConnectionString, connection.endpoints.https, dps.ca);
  await service.createOrUpdateEnrollmentGroup({
    enrollmentGroupId: SK_GROUP,
    attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: groupKey, secondaryKey: generateSymmetricKey() } },
    initialTwin: { properties: { desired: { from: SK_GROUP, interval: 31 } } },
  } as never);
  await service.createOrUpdateEnrollmentGroup({
    enrollmentGroupId: X509_GROUP,
    attestation: { type: 'x509', x509: { signingCertificates: { primary: { certificate: deviceRoot.certificatePem } } } },
    initialTwin: { properties: { desired: { from: X509_GROUP, interval: 61 } } },
  } as never);
});

afterAll(() => dps?.stop());

function registerInChild(transport: AmqpTransport, credential: DeviceCredential): Promise<DeviceRun> {
  const options = {
    transport,
    amqpPort: portOf(dps.connection.endpoints.amqp),
    httpsPort: portOf(dps.connection.endpoints.https),
    ca: dps.ca,
    idScope: dps.connection.idScope,
    credential,
  };
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['-e', DEVICE_SCRIPT, JSON.stringify(options)],
      // The machine's NODE_EXTRA_CA_CERTS is replaced by the dev CA of this server.
      { cwd: __dirname, env: { PATH: process.env.PATH, NODE_EXTRA_CA_CERTS: dps.server.caFile }, timeout: 20_000 },
      (error, stdout, stderr) => {
        if (error) return reject(new Error(`the device process failed: ${error.message}\n${stderr}`));
        try {
          resolve(JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as DeviceRun);
        } catch {
          reject(new Error(`the device process printed no result: ${stdout}\n${stderr}`));
        }
      },
    );
  });
}

/** Writes what this combination needs through the service SDK and returns the device's credential. */
async function enroll(attestation: Attestation, registrationId: string): Promise<{ credential: DeviceCredential; desired: Record<string, unknown>; groupId?: string }> {
  switch (attestation) {
    case 'symmetric key individual': {
      const key = generateSymmetricKey();
      const desired = { from: registrationId, interval: 3 };
      await service.createOrUpdateIndividualEnrollment({
        registrationId,
        attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: generateSymmetricKey() } },
        initialTwin: { properties: { desired } },
      } as never);
      return { credential: { kind: 'symmetricKey', registrationId, key }, desired };
    }
    case 'symmetric key group':
      return {
        credential: { kind: 'symmetricKey', registrationId, key: deriveDeviceKey(groupKey, registrationId) },
        desired: { from: SK_GROUP, interval: 31 },
        groupId: SK_GROUP,
      };
    case 'x509 individual': {
      const leaf = createLeaf(undefined, { commonName: registrationId });
      const desired = { from: registrationId, interval: 9 };
      await service.createOrUpdateIndividualEnrollment({
        registrationId,
        attestation: { type: 'x509', x509: { clientCertificates: { primary: { certificate: leaf.certificatePem } } } },
        initialTwin: { properties: { desired } },
      } as never);
      return { credential: { kind: 'x509', registrationId, cert: leaf.certificatePem, key: leaf.privateKeyPem }, desired };
    }
    case 'x509 group': {
      // The group's signing certificate is the root; the device sends its leaf and the intermediate.
      const leaf = createLeaf(intermediate, { commonName: registrationId });
      return {
        credential: { kind: 'x509', registrationId, cert: leaf.certificatePem + intermediate.certificatePem, key: leaf.privateKeyPem },
        desired: { from: X509_GROUP, interval: 61 },
        groupId: X509_GROUP,
      };
    }
  }
}

const combinations = TRANSPORTS.flatMap((transport) => ATTESTATIONS.map((attestation) => [transport, attestation] as [AmqpTransport, Attestation]));

test.each(combinations)('%s, %s: register, connect to the hub, read the twin, send telemetry, report properties', async (transport, attestation) => {
  const registrationId = `amqp-matrix-${transport}-${attestation.replace(/ /g, '-')}`;
  const { credential, desired, groupId } = await enroll(attestation, registrationId);
  const hubHostName = dps.connection.endpoints.hubs[0]!;
  const hub = dps.server.hubs.get('hub-1')!;
  expect(await hub.getDevice(registrationId)).toBeUndefined();

  const { result, error } = await registerInChild(transport, credential);
  expect(error).toBeUndefined();
  expect(result).toMatchObject({ registrationId, status: 'assigned', assignedHub: hubHostName, deviceId: registrationId });
  if (credential.kind === 'symmetricKey') expect(result?.symmetricKey).toEqual(groupId ? { enrollmentGroupId: groupId } : {});
  else expect(result?.x509).toMatchObject({ ...(groupId ? { enrollmentGroupId: groupId } : {}), certificateInfo: { subjectName: `CN=${registrationId}` } });
  expect(await hub.getDevice(registrationId)).toBeDefined();

  const device = await connectToHub(result!.assignedHub!, result!.deviceId!, credential, dps.ca);
  try {
    expect(await device.desired()).toMatchObject({ ...desired, $version: 1 });

    const before = hub.telemetryCount(registrationId);
    await device.sendTelemetry({ humidity: 40, combination: registrationId }, { kind: 'amqp-matrix' });
    expect(hub.telemetryCount(registrationId)).toBe(before + 1);
    const [message] = hub.receivedMessages(registrationId).slice(-1);
    expect(JSON.parse(message!.payload.toString('utf8'))).toEqual({ humidity: 40, combination: registrationId });
    expect(message!.properties).toMatchObject({ kind: 'amqp-matrix' });

    await device.reportProperties({ firmware: '2.0.0', provisionedOver: transport });
    const twin = await hubTwin(dps.connection.instances[0]!.linkedHubs[0]!.connectionString!, dps.ca, registrationId);
    expect(twin.status).toBe(200);
    expect(twin.json).toMatchObject({ deviceId: registrationId, properties: { reported: { firmware: '2.0.0', provisionedOver: transport }, desired } });
  } finally {
    await device.close();
  }
}, 30_000);
