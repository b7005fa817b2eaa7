/**
 * Refusals through the real listeners of the composed server: each bad credential gets the right
 * status and DPS errorCode over HTTPS (status, `x-ms-error-code`, body) and over MQTT (the status in
 * `$dps/registrations/res/{status}/?$rid=…` and the body's errorCode). Enrollments and the CA record
 * are written straight into the server's store.
 */
import { certificateInfo, generateSymmetricKey, parseCertificate, validateEnrollmentGroup, validateIndividualEnrollment } from '@opendps/model';
import { createLeaf, createRootCa, type Issued } from '@opendps/pki';
import { caCertificates, enrollmentGroups, enrollments } from '@opendps/store';
import {
  MqttDpsSession,
  deviceSas,
  httpsRegister,
  mqttRegister,
  portOf,
  registerWithSdk,
  type DpsEndpoints,
} from './support/devices';
import { startOpenDps, type OpenDps } from './support/opendps';

let dps: OpenDps;
let endpoints: DpsEndpoints;
let idScope: string;

const key = generateSymmetricKey();
const groupRoot = createRootCa({ commonName: 'Refusals group root' });
const unknownRoot = createRootCa({ commonName: 'Refusals unknown root' });
const unverifiedRoot = createRootCa({ commonName: 'Refusals unverified root' });
const HOUR = 3600_000;

beforeAll(async () => {
  dps = await startOpenDps();
  idScope = dps.connection.idScope;
  endpoints = { mqttPort: portOf(dps.connection.endpoints.mqtt), httpsPort: portOf(dps.connection.endpoints.https), ca: dps.ca };
  const individuals = enrollments(dps.server.store, idScope);
  const groups = enrollmentGroups(dps.server.store, idScope);
  const symmetric = { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: generateSymmetricKey() } };
  await individuals.put(validateIndividualEnrollment({ registrationId: 'ref-sk', attestation: symmetric }));
  await individuals.put(validateIndividualEnrollment({ registrationId: 'ref-disabled', attestation: symmetric, provisioningStatus: 'disabled' }));
  await groups.put(
    validateEnrollmentGroup({
      enrollmentGroupId: 'ref-x509-group',
      attestation: { type: 'x509', x509: { signingCertificates: { primary: { certificate: groupRoot.certificatePem } } } },
    }),
  );
  // The CA admin API is being built: the unverified CA record goes into the store directly.
  await caCertificates(dps.server.store, idScope).put({
    name: 'ref-unverified-ca',
    certificate: unverifiedRoot.certificatePem,
    info: certificateInfo(parseCertificate(unverifiedRoot.certificatePem)),
    isVerified: false,
  });
  await groups.put(
    validateEnrollmentGroup({ enrollmentGroupId: 'ref-unverified-group', attestation: { type: 'x509', x509: { caReferences: { primary: 'ref-unverified-ca' } } } }),
  );
});

afterAll(() => dps?.stop());

type Proof = { password: string } | { cert: string; key: string };

interface Refusal {
  name: string;
  registrationId: string;
  proof: () => Proof;
  idScope?: string;
  status: number;
  errorCode: number;
  /** A phrase of the message that tells this refusal from the others with the same code. */
  message?: RegExp;
}

const now = () => Math.floor(Date.now() / 1000);
const x509 = (leaf: Issued): Proof => ({ cert: leaf.certificatePem, key: leaf.privateKeyPem });

const refusals: Refusal[] = [
  { name: 'a wrong key', registrationId: 'ref-sk', proof: () => ({ password: deviceSas(idScope, 'ref-sk', generateSymmetricKey()) }), status: 401, errorCode: 401002 },
  {
    name: 'an expired token',
    registrationId: 'ref-sk',
    proof: () => ({ password: deviceSas(idScope, 'ref-sk', key, now() - 3600) }),
    status: 401,
    errorCode: 401003,
  },
  {
    name: 'a token for another registration id',
    registrationId: 'ref-sk',
    proof: () => ({ password: deviceSas(idScope, 'ref-other', key) }),
    status: 401,
    errorCode: 401005,
  },
  {
    name: 'an unknown ID scope',
    registrationId: 'ref-sk',
    idScope: '0ne99999999',
    proof: () => ({ password: deviceSas('0ne99999999', 'ref-sk', key) }),
    status: 404,
    errorCode: 404205,
  },
  {
    name: 'a certificate from an unknown CA',
    registrationId: 'ref-unknown-ca',
    proof: () => x509(createLeaf(unknownRoot, { commonName: 'ref-unknown-ca' })),
    status: 401,
    errorCode: 401002,
    message: /unknown CA/,
  },
  {
    name: 'an expired certificate',
    registrationId: 'ref-expired',
    proof: () => x509(createLeaf(groupRoot, { commonName: 'ref-expired', notBefore: new Date(Date.now() - 48 * HOUR), notAfter: new Date(Date.now() - 24 * HOUR) })),
    status: 401,
    errorCode: 401002,
    message: /expired/,
  },
  {
    name: 'a leaf whose CN is not the registration id',
    registrationId: 'ref-cn-b',
    proof: () => x509(createLeaf(groupRoot, { commonName: 'ref-cn-a' })),
    status: 401,
    errorCode: 401002,
    message: /common name 'ref-cn-a' does not match/,
  },
  {
    name: 'a leaf under an unverified CA reference',
    registrationId: 'ref-unverified',
    proof: () => x509(createLeaf(unverifiedRoot, { commonName: 'ref-unverified' })),
    status: 401,
    errorCode: 401002,
    message: /not verified/,
  },
];

describe.each(refusals)('$name', (refusal) => {
  test('over HTTPS: status, x-ms-error-code and body', async () => {
    const proof = refusal.proof();
    const response = await httpsRegister(endpoints, refusal.idScope ?? idScope, refusal.registrationId, 'password' in proof ? { authorization: proof.password } : proof);
    expect(response.status).toBe(refusal.status);
    expect(response.headers['x-ms-error-code']).toBe(String(refusal.errorCode));
    expect(response.headers['content-type']).toMatch(/application\/json/);
    expect(response.json).toMatchObject({ errorCode: refusal.errorCode, trackingId: expect.any(String), message: expect.any(String) });
    if (refusal.message) expect(response.json?.message).toMatch(refusal.message);
  });

  test('over MQTT: a SAS is answered in the response topic; an X.509 chain is refused at CONNECT (CONNACK 5), as DPS does', async () => {
    const proof = refusal.proof();
    const options = { ...endpoints, port: endpoints.mqttPort, idScope: refusal.idScope ?? idScope, registrationId: refusal.registrationId, ...proof };
    if ('cert' in proof) {
      const refused = await MqttDpsSession.open(options).then(
        async (session) => {
          await session.close();
          return undefined;
        },
        (error: Error & { code?: number }) => error,
      );
      expect(refused?.code).toBe(5);
      return;
    }
    const session = await MqttDpsSession.open(options);
    try {
      const answer = await session.register(refusal.registrationId);
      expect(answer.status).toBe(refusal.status);
      expect(answer.topic).toMatch(new RegExp(`^\\$dps/registrations/res/${refusal.status}/\\?\\$rid=`));
      expect(answer.body).toMatchObject({ errorCode: refusal.errorCode });
      if (refusal.message) expect(answer.body?.message).toMatch(refusal.message);
    } finally {
      await session.close();
    }
  });
});

describe('a disabled enrollment with the right key', () => {
  const proof = () => deviceSas(idScope, 'ref-disabled', key);

  test('over HTTPS: 200 with status disabled', async () => {
    const response = await httpsRegister(endpoints, idScope, 'ref-disabled', { authorization: proof() });
    expect(response.status).toBe(200);
    expect(response.json).toMatchObject({ status: 'disabled', registrationState: { registrationId: 'ref-disabled', status: 'disabled' } });
    expect(response.json?.registrationState).not.toHaveProperty('assignedHub');
  });

  test('over MQTT: 200 with status disabled', async () => {
    const session = await MqttDpsSession.open({ ...endpoints, port: endpoints.mqttPort, idScope, registrationId: 'ref-disabled', password: proof() });
    try {
      const answer = await session.register('ref-disabled');
      expect(answer.status).toBe(200);
      expect(answer.body).toMatchObject({ status: 'disabled', registrationState: { status: 'disabled' } });
    } finally {
      await session.close();
    }
  });

  test('the unmodified SDK fails register() with "status is disabled" (docs/device-wire.md §6)', async () => {
    const error = await registerWithSdk('mqtt', endpoints, idScope, { kind: 'symmetricKey', registrationId: 'ref-disabled', key }).then(
      () => undefined,
      (caught: Error) => caught,
    );
    expect(error?.name).toBe('SyntaxError');
    expect(error?.message).toMatch(/status is disabled/i);
  });
});

describe('controls: the same enrollments accept the right proof', () => {
  test('the right key for ref-sk is assigned over HTTPS and MQTT', async () => {
    const response = await httpsRegister(endpoints, idScope, 'ref-sk', { authorization: deviceSas(idScope, 'ref-sk', key) });
    expect([response.status, response.json?.status]).toEqual([200, 'assigned']);
    const answer = await mqttRegister({ ...endpoints, port: endpoints.mqttPort, idScope, registrationId: 'ref-sk', password: deviceSas(idScope, 'ref-sk', key) });
    expect([answer.status, answer.body?.status]).toEqual([200, 'assigned']);
  });

  test('a valid leaf under the group root whose CN is the registration id is assigned over HTTPS and MQTT', async () => {
    const leaf = createLeaf(groupRoot, { commonName: 'ref-good-leaf' });
    const response = await httpsRegister(endpoints, idScope, 'ref-good-leaf', x509(leaf) as { cert: string; key: string });
    expect([response.status, response.json?.status]).toEqual([200, 'assigned']);
    const answer = await mqttRegister({ ...endpoints, port: endpoints.mqttPort, idScope, registrationId: 'ref-good-leaf', cert: leaf.certificatePem, key: leaf.privateKeyPem });
    expect([answer.status, answer.body?.status]).toEqual([200, 'assigned']);
  });
});
