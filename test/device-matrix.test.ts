/**
 * The whole device journey with the unmodified Azure IoT SDKs against the composed OpenDPS server:
 * every DPS transport (Mqtt, MqttWs, Http) x every attestation (symmetric key individual and
 * group-derived, X.509 individual and group through an intermediate). Enrollments are written with
 * the unmodified service SDK; each device registers, connects to its assigned built-in hub with
 * azure-iot-device over MQTT, reads the desired properties of its enrollment's initial twin, sends
 * telemetry the hub counts, and reports properties the hub's REST API then shows.
 */
import { deriveDeviceKey } from '@opendps/attestation';
import { generateSymmetricKey } from '@opendps/model';
import { createIntermediateCa, createLeaf, createRootCa } from '@opendps/pki';
import type { ProvisioningServiceClient } from 'azure-iot-provisioning-service';
import {
  DPS_TRANSPORTS,
  connectToHub,
  hubTwin,
  portOf,
  registerWithSdk,
  type DeviceCredential,
  type DpsEndpoints,
  type DpsTransport,
} from './support/devices';
import { serviceClient, startOpenDps, type OpenDps } from './support/opendps';

type Attestation = 'symmetric key individual' | 'symmetric key group' | 'x509 individual' | 'x509 group';
const ATTESTATIONS: readonly Attestation[] = ['symmetric key individual', 'symmetric key group', 'x509 individual', 'x509 group'];

const SK_GROUP = 'matrix-sk-group';
const X509_GROUP = 'matrix-x509-group';
const groupKey = generateSymmetricKey();
const deviceRoot = createRootCa({ commonName: 'Matrix device root' });
const intermediate = createIntermediateCa(deviceRoot, { commonName: 'Matrix device intermediate' });

let dps: OpenDps;
let service: ProvisioningServiceClient;
let endpoints: DpsEndpoints;

beforeAll(async () => {
  dps = await startOpenDps();
  const { connection } = dps;
  endpoints = { mqttPort: portOf(connection.endpoints.mqtt), httpsPort: portOf(connection.endpoints.https), ca: dps.ca };
  service = serviceClient(connection.serviceConnectionString, connection.endpoints.https, dps.ca);
  await service.createOrUpdateEnrollmentGroup({
    enrollmentGroupId: SK_GROUP,
    attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: groupKey, secondaryKey: generateSymmetricKey() } },
    initialTwin: { tags: { fleet: 'sk' }, properties: { desired: { from: SK_GROUP, interval: 30 } } },
  } as never);
  await service.createOrUpdateEnrollmentGroup({
    enrollmentGroupId: X509_GROUP,
    attestation: { type: 'x509', x509: { signingCertificates: { primary: { certificate: deviceRoot.certificatePem } } } },
    initialTwin: { properties: { desired: { from: X509_GROUP, interval: 60 } } },
  } as never);
});

afterAll(() => dps?.stop());

/** Writes what this combination needs through the service SDK and returns the device's credential. */
async function enroll(attestation: Attestation, registrationId: string): Promise<{ credential: DeviceCredential; desired: Record<string, unknown>; groupId?: string }> {
  switch (attestation) {
    case 'symmetric key individual': {
      const key = generateSymmetricKey();
      const desired = { from: registrationId, interval: 5 };
      await service.createOrUpdateIndividualEnrollment({
        registrationId,
        attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: generateSymmetricKey() } },
        initialTwin: { properties: { desired } },
      } as never);
      return { credential: { kind: 'symmetricKey', registrationId, key }, desired };
    }
    case 'symmetric key group':
      // The app derives its key from the group key, as the SDK samples do (docs/service-rest.md §14).
      return {
        credential: { kind: 'symmetricKey', registrationId, key: deriveDeviceKey(groupKey, registrationId) },
        desired: { from: SK_GROUP, interval: 30 },
        groupId: SK_GROUP,
      };
    case 'x509 individual': {
      const leaf = createLeaf(undefined, { commonName: registrationId });
      const desired = { from: registrationId, interval: 7 };
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
        desired: { from: X509_GROUP, interval: 60 },
        groupId: X509_GROUP,
      };
    }
  }
}

const combinations = DPS_TRANSPORTS.flatMap((transport) => ATTESTATIONS.map((attestation) => [transport, attestation] as [DpsTransport, Attestation]));

test.each(combinations)('%s, %s: register, connect to the hub, read the twin, send telemetry, report properties', async (transport, attestation) => {
  const registrationId = `matrix-${transport}-${attestation.replace(/ /g, '-')}`;
  const { credential, desired, groupId } = await enroll(attestation, registrationId);
  const hubHostName = dps.connection.endpoints.hubs[0]!;

  const result = await registerWithSdk(transport, endpoints, dps.connection.idScope, credential);
  expect(result).toMatchObject({ registrationId, status: 'assigned', assignedHub: hubHostName, deviceId: registrationId });
  if (credential.kind === 'symmetricKey') expect(result.symmetricKey).toEqual(groupId ? { enrollmentGroupId: groupId } : {});
  else expect(result.x509).toMatchObject({ ...(groupId ? { enrollmentGroupId: groupId } : {}), certificateInfo: { subjectName: `CN=${registrationId}` } });

  const device = await connectToHub(result.assignedHub!, result.deviceId!, credential, dps.ca);
  try {
    expect(await device.desired()).toMatchObject({ ...desired, $version: 1 });

    const hub = dps.server.hubs.get('hub-1')!;
    const before = hub.telemetryCount(registrationId);
    await device.sendTelemetry({ temperature: 21.5, combination: registrationId }, { kind: 'reading' });
    expect(hub.telemetryCount(registrationId)).toBe(before + 1);
    const [message] = hub.receivedMessages(registrationId).slice(-1);
    expect(JSON.parse(message!.payload.toString('utf8'))).toEqual({ temperature: 21.5, combination: registrationId });
    expect(message!.properties).toMatchObject({ kind: 'reading' });

    await device.reportProperties({ firmware: '1.2.3', transport });
    const twin = await hubTwin(dps.connection.instances[0]!.linkedHubs[0]!.connectionString!, dps.ca, registrationId);
    expect(twin.status).toBe(200);
    expect(twin.json).toMatchObject({ deviceId: registrationId, properties: { reported: { firmware: '1.2.3', transport }, desired } });
  } finally {
    await device.close();
  }
});
