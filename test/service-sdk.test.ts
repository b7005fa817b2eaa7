/**
 * Interop of the unmodified `azure-iot-provisioning-service` SDK with a full OpenDPS (createServer:
 * service API, device plane, built-in hub), once on the embedded store and once on Redis. The SDK is
 * pointed at the test port the option-B way (docs/service-rest.md §9); its quirks (§10) are used as the
 * SDK's own documentation requires. Assertions are on what the SDK returns: bodies, error classes,
 * HTTP statuses and DPS errorCodes.
 */
import { randomBytes, X509Certificate } from 'node:crypto';
import { request } from 'node:https';
import { createSasToken, deriveDeviceKey, tpm } from '@opendps/attestation';
import { serviceConnectionString, type ProvisioningInstance } from '@opendps/model';
import { createLeaf, createRootCa } from '@opendps/pki';
import { instanceCollection } from '@opendps/server';
import type { ProvisioningServiceClient } from 'azure-iot-provisioning-service';
import type {
  AttestationMechanism,
  BulkEnrollmentOperationResult,
  DeviceRegistrationState,
  EnrollmentGroup,
  IndividualEnrollment,
} from 'azure-iot-provisioning-service/dist/interfaces';
import { endorsementKey } from './support/endorsement-key';
import { startRedis, type RedisServer } from './support/redis-server';
import { serviceClient, startOpenDps, type OpenDps } from './support/opendps';

type Backend = 'embedded' | 'redis';

/** What a rejected SDK call carries: the error class, the HTTP status and the DPS errorCode. */
interface Refusal {
  name: string;
  status: number | undefined;
  errorCode: number | undefined;
}

async function refusal(call: Promise<unknown>): Promise<Refusal> {
  const outcome = await call.then(
    () => undefined,
    (error: Error & { response?: { statusCode?: number }; responseBody?: string }) => error,
  );
  if (!outcome) throw new Error('The SDK call succeeded; a refusal was expected.');
  let errorCode: number | undefined;
  try {
    errorCode = (JSON.parse(outcome.responseBody ?? '') as { errorCode?: number }).errorCode;
  } catch {
    errorCode = undefined;
  }
  return { name: outcome.name, status: outcome.response?.statusCode, errorCode };
}

const key = (): string => randomBytes(32).toString('base64');
const sha1 = (pem: string): string => new X509Certificate(pem).fingerprint.replace(/:/g, '');

/** Registers a symmetric-key device through the device HTTPS API and polls until it is no longer assigning. */
async function registerOverHttps(dps: OpenDps, registrationId: string, deviceKey: string): Promise<{ status: string; registrationState?: DeviceRegistrationState }> {
  const { idScope } = dps.connection;
  const port = Number(dps.connection.endpoints.https.split(':').pop());
  const authorization = createSasToken({
    resource: `${idScope}/registrations/${registrationId}`,
    key: deviceKey,
    keyName: 'registration',
    expiry: Math.floor(Date.now() / 1000) + 3600,
  });
  const call = (method: string, path: string, body?: unknown) =>
    new Promise<{ status: number; json: Record<string, unknown> }>((resolve, reject) => {
      const req = request(
        {
          host: 'localhost',
          port,
          ca: dps.ca,
          method,
          path: `/${idScope}/registrations/${registrationId}${path}?api-version=2019-03-31`,
          headers: { authorization, accept: 'application/json', 'content-type': 'application/json; charset=utf-8' },
        },
        (res) => {
          let text = '';
          res.on('data', (chunk: Buffer) => (text += chunk.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} }));
        },
      );
      req.on('error', reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
  let reply = await call('PUT', '/register', { registrationId });
  const deadline = Date.now() + 15_000;
  while (reply.json.status === 'assigning' && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    reply = await call('GET', `/operations/${String(reply.json.operationId)}`);
  }
  if (reply.status !== 200) throw new Error(`register answered ${reply.status}: ${JSON.stringify(reply.json)}`);
  return reply.json as { status: string; registrationState?: DeviceRegistrationState };
}

/** Bulk resolves only in callback style (docs/service-rest.md §10.1). */
function bulk(client: ProvisioningServiceClient, operation: object): Promise<BulkEnrollmentOperationResult> {
  return new Promise((resolve, reject) => {
    client.runBulkEnrollmentOperation(operation as never, (error, result) => (error ? reject(error) : resolve(result as BulkEnrollmentOperationResult)));
  });
}

describe.each<[Backend]>([['embedded'], ['redis']])('the unmodified service SDK against OpenDPS on %s state', (backend) => {
  let redis: RedisServer | undefined;
  let dps: OpenDps;
  let client: ProvisioningServiceClient;
  const root = createRootCa({ commonName: `interop-root-${backend}` });

  beforeAll(async () => {
    if (backend === 'redis') redis = await startRedis();
    dps = await startOpenDps(redis ? { redisUrl: redis.url } : {});
    client = serviceClient(dps.connection.serviceConnectionString, dps.connection.endpoints.https, dps.ca);
  });
  afterAll(async () => {
    await dps?.stop();
    await redis?.stop();
  });

  it('runs on the backend it names', () => {
    expect(dps.server.store.kind).toBe(backend === 'redis' ? 'redis' : 'sqlite');
  });

  describe('individual enrollments: create, get, update with etag, stale etag, delete', () => {
    const deviceCert = createLeaf(root, { commonName: `x509-dev-${backend}` });
    const givenKeys = { primaryKey: key(), secondaryKey: key() };
    const ek = endorsementKey();
    const cases: Array<[string, string, () => AttestationMechanism, (created: AttestationMechanism, mechanism: AttestationMechanism) => void]> = [
      [
        'symmetric key with given keys',
        'sym-given',
        () => ({ type: 'symmetricKey', symmetricKey: { ...givenKeys } }),
        (created, mechanism) => {
          expect(created.symmetricKey).toEqual(givenKeys);
          expect(mechanism.symmetricKey).toEqual(givenKeys);
        },
      ],
      [
        'symmetric key without keys (generated)',
        'sym-generated',
        () => ({ type: 'symmetricKey' }) as AttestationMechanism,
        (created, mechanism) => {
          const { primaryKey, secondaryKey } = created.symmetricKey ?? {};
          for (const generated of [primaryKey, secondaryKey]) {
            expect(Buffer.from(generated ?? '', 'base64').length).toBe(64);
          }
          expect(primaryKey).not.toBe(secondaryKey);
          expect(mechanism.symmetricKey).toEqual(created.symmetricKey);
        },
      ],
      [
        'X.509 client certificate',
        `x509-dev-${backend}`,
        () => ({ type: 'x509', x509: { clientCertificates: { primary: { certificate: deviceCert.certificatePem } } } }),
        (created, mechanism) => {
          for (const view of [created, mechanism]) {
            const info = view.x509?.clientCertificates?.primary?.info;
            expect(info?.subjectName).toContain(`CN=x509-dev-${backend}`);
            expect(info?.issuerName).toContain(`CN=interop-root-${backend}`);
            expect(info?.sha1Thumbprint.toUpperCase()).toBe(sha1(deviceCert.certificatePem));
          }
        },
      ],
      [
        'TPM with an endorsement key',
        'tpm-dev',
        () => ({ type: 'tpm', tpm: { endorsementKey: ek } }) as AttestationMechanism, // no SRK: DPS does not need one
        (created, mechanism) => {
          // The key is a TPM2B_PUBLIC our own TPM code parses (so a device could use it), returned byte for byte.
          expect(tpm.parseTpm2bPublic(Buffer.from(ek, 'base64')).public.type).toBe(tpm.TPM_ALG.RSA);
          expect(created.tpm?.endorsementKey).toBe(ek);
          expect(mechanism.tpm?.endorsementKey).toBe(ek);
        },
      ],
    ];

    it.each(cases)('%s', async (_label, registrationId, attestation, checkAttestation) => {
      const created = (await client.createOrUpdateIndividualEnrollment({ registrationId, attestation: attestation() } as IndividualEnrollment)).responseBody;
      expect(created.registrationId).toBe(registrationId);
      expect(created.provisioningStatus).toBe('enabled');
      expect(created.etag).toBeTruthy();
      expect(created.attestation.type).toBe(attestation().type);

      const mechanism = (await client.getIndividualEnrollmentAttestationMechanism(registrationId)).responseBody;
      checkAttestation(created.attestation, mechanism);

      const read = (await client.getIndividualEnrollment(registrationId)).responseBody;
      expect(read.etag).toBe(created.etag);
      expect(read.attestation.type).toBe(created.attestation.type);
      if (read.attestation.type === 'x509') expect(read.attestation.x509?.clientCertificates?.primary?.certificate).toBeUndefined();

      // The SDK sends If-Match because the object carries its etag (docs/service-rest.md §6).
      read.provisioningStatus = 'disabled';
      read.initialTwin = { tags: { floor: 3 }, properties: { desired: { rate: 5 } } } as never;
      const updated = (await client.createOrUpdateIndividualEnrollment(read)).responseBody;
      expect(updated.etag).not.toBe(created.etag);
      expect(updated.provisioningStatus).toBe('disabled');
      expect(updated.initialTwin).toMatchObject({ tags: { floor: 3 }, properties: { desired: { rate: 5 } } });
      // What a read-modify-write left out (keys, certificates) is kept.
      checkAttestation(created.attestation, (await client.getIndividualEnrollmentAttestationMechanism(registrationId)).responseBody);

      // `read` still carries the first etag.
      expect(await refusal(client.createOrUpdateIndividualEnrollment(read))).toEqual({ name: 'InvalidEtagError', status: 412, errorCode: 412001 });
      expect(await refusal(client.deleteIndividualEnrollment(registrationId, created.etag as string))).toEqual({
        name: 'InvalidEtagError',
        status: 412,
        errorCode: 412001,
      });
      expect((await client.getIndividualEnrollment(registrationId)).responseBody.provisioningStatus).toBe('disabled');

      await client.deleteIndividualEnrollment(updated);
      expect(await refusal(client.getIndividualEnrollment(registrationId))).toEqual({ name: 'Error', status: 404, errorCode: 404201 });
      expect(await refusal(client.getIndividualEnrollmentAttestationMechanism(registrationId))).toMatchObject({ status: 404, errorCode: 404201 });
      expect(await refusal(client.deleteIndividualEnrollment(registrationId))).toMatchObject({ status: 404, errorCode: 404201 });
    });
  });

  describe('enrollment groups: create, get, update with etag, stale etag, delete', () => {
    const signer = createRootCa({ commonName: `group-signer-${backend}` });
    const cases: Array<[string, string, () => AttestationMechanism, (mechanism: AttestationMechanism) => void]> = [
      [
        'symmetric key (generated)',
        'grp:sym', // the SDK sends it encoded: /enrollmentGroups/grp%3Asym
        () => ({ type: 'symmetricKey' }) as AttestationMechanism,
        (mechanism) => expect(Buffer.from(mechanism.symmetricKey?.primaryKey ?? '', 'base64').length).toBe(64),
      ],
      [
        'X.509 signing certificate',
        'grp-x509',
        () => ({ type: 'x509', x509: { signingCertificates: { primary: { certificate: signer.certificatePem } } } }),
        (mechanism) => {
          const info = mechanism.x509?.signingCertificates?.primary?.info;
          expect(info?.subjectName).toContain(`CN=group-signer-${backend}`);
          expect(info?.sha1Thumbprint.toUpperCase()).toBe(sha1(signer.certificatePem));
        },
      ],
    ];

    it.each(cases)('%s', async (_label, enrollmentGroupId, attestation, checkMechanism) => {
      const created = (await client.createOrUpdateEnrollmentGroup({ enrollmentGroupId, attestation: attestation() } as EnrollmentGroup)).responseBody;
      expect(created.enrollmentGroupId).toBe(enrollmentGroupId);
      expect(created.etag).toBeTruthy();
      const mechanism = (await client.getEnrollmentGroupAttestationMechanism(enrollmentGroupId)).responseBody;
      expect(mechanism.type).toBe(attestation().type);
      checkMechanism(mechanism);

      const read = (await client.getEnrollmentGroup(enrollmentGroupId)).responseBody;
      expect(read.etag).toBe(created.etag);
      read.provisioningStatus = 'disabled';
      const updated = (await client.createOrUpdateEnrollmentGroup(read)).responseBody;
      expect(updated.provisioningStatus).toBe('disabled');
      expect(updated.etag).not.toBe(created.etag);
      expect((await client.getEnrollmentGroupAttestationMechanism(enrollmentGroupId)).responseBody).toEqual(mechanism);

      expect(await refusal(client.createOrUpdateEnrollmentGroup(read))).toEqual({ name: 'InvalidEtagError', status: 412, errorCode: 412001 });
      expect(await refusal(client.deleteEnrollmentGroup(enrollmentGroupId, created.etag as string))).toMatchObject({ name: 'InvalidEtagError', status: 412 });

      await client.deleteEnrollmentGroup(updated);
      expect(await refusal(client.getEnrollmentGroup(enrollmentGroupId))).toEqual({ name: 'Error', status: 404, errorCode: 404203 });
    });
  });

  it('pages an enrollment query with the continuation token until the last page ends the loop', async () => {
    const ids = Array.from({ length: 7 }, (_, i) => `page-${backend}-${i}`);
    const result = await bulk(client, { mode: 'create', enrollments: ids.slice(0, 5).map((registrationId) => ({ registrationId, attestation: { type: 'symmetricKey' } })) });
    expect(result).toEqual({ isSuccessful: true, errors: [] });
    for (const registrationId of ids.slice(5)) {
      await client.createOrUpdateIndividualEnrollment({ registrationId, attestation: { type: 'symmetricKey' } } as IndividualEnrollment);
    }

    // next() needs the token passed explicitly (docs/service-rest.md §10.2); the bound only guards the test.
    const query = client.createIndividualEnrollmentQuery({ query: '*' }, 3);
    const pages: string[][] = [];
    while (query.hasMoreResults && pages.length < 50) {
      const page = (await query.next(query.continuationToken)).responseBody as unknown as IndividualEnrollment[];
      pages.push(page.map((enrollment) => enrollment.registrationId));
      for (const enrollment of page) expect(enrollment.attestation.symmetricKey?.primaryKey).toBeUndefined();
    }
    expect(query.hasMoreResults).toBe(false);
    const seen = pages.flat();
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual(expect.arrayContaining(ids));
    expect(pages.length).toBe(Math.ceil(seen.length / 3));
    expect(pages.length).toBeGreaterThan(2);
    for (const page of pages.slice(0, -1)) expect(page).toHaveLength(3);
    expect(pages.at(-1)?.length).toBeGreaterThan(0);

    // The SELECT form is accepted too, and anything else is a coded 400.
    const select = client.createIndividualEnrollmentQuery({ query: 'SELECT * FROM enrollments' });
    const all = (await select.next()).responseBody as unknown as IndividualEnrollment[];
    expect(select.hasMoreResults).toBe(false);
    expect(all.map((enrollment) => enrollment.registrationId).sort()).toEqual([...seen].sort());
    expect(await refusal(client.createIndividualEnrollmentQuery({ query: "SELECT * FROM enrollments WHERE registrationId = 'x'" }).next())).toMatchObject({
      name: 'ArgumentError',
      status: 400,
    });

    const removed = await bulk(client, { mode: 'delete', enrollments: ids.map((registrationId) => ({ registrationId })) });
    expect(removed).toEqual({ isSuccessful: true, errors: [] });
    expect(await refusal(client.getIndividualEnrollment(ids[0] as string))).toMatchObject({ status: 404, errorCode: 404201 });
  });

  it('reports a failing bulk item without failing the others', async () => {
    await client.createOrUpdateIndividualEnrollment({ registrationId: 'bulk-taken', attestation: { type: 'symmetricKey' } } as IndividualEnrollment);
    const result = await bulk(client, {
      mode: 'create',
      enrollments: [
        { registrationId: 'bulk-new-1', attestation: { type: 'symmetricKey' } },
        { registrationId: 'bulk-taken', attestation: { type: 'symmetricKey' } },
        { registrationId: 'bulk-bad-tpm', attestation: { type: 'tpm', tpm: { endorsementKey: 'not base64!' } } },
        { registrationId: 'bulk-new-2', attestation: { type: 'symmetricKey' } },
      ],
    });
    expect(result.isSuccessful).toBe(false);
    expect(result.errors.map((error) => [error.registrationId, Math.floor(error.errorCode / 1000)])).toEqual([
      ['bulk-taken', 409],
      ['bulk-bad-tpm', 400],
    ]);
    expect(result.errors[0]?.errorCode).toBe(409001);
    for (const registrationId of ['bulk-new-1', 'bulk-new-2']) {
      expect((await client.getIndividualEnrollment(registrationId)).responseBody.registrationId).toBe(registrationId);
    }
    expect(await refusal(client.getIndividualEnrollment('bulk-bad-tpm'))).toMatchObject({ status: 404, errorCode: 404201 });

    // updateIfMatchETag: a current etag is applied, a stale one is that item's 412.
    const current = (await client.getIndividualEnrollment('bulk-new-1')).responseBody;
    const result2 = await bulk(client, {
      mode: 'updateIfMatchETag',
      enrollments: [
        { ...current, provisioningStatus: 'disabled' },
        { registrationId: 'bulk-new-2', attestation: { type: 'symmetricKey' }, provisioningStatus: 'disabled', etag: current.etag },
      ],
    });
    expect(result2).toEqual({ isSuccessful: false, errors: [expect.objectContaining({ registrationId: 'bulk-new-2', errorCode: 412001 })] });
    expect((await client.getIndividualEnrollment('bulk-new-1')).responseBody.provisioningStatus).toBe('disabled');
    expect((await client.getIndividualEnrollment('bulk-new-2')).responseBody.provisioningStatus).toBe('enabled');
    // (The Node SDK has no bulk call for groups: runBulkEnrollmentOperation always posts to /enrollments/.)
  });

  it('reads and deletes the registration state of a device registered over the device API', async () => {
    const registrationId = `reg-${backend}`;
    const deviceKey = key();
    await client.createOrUpdateIndividualEnrollment({
      registrationId,
      attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: deviceKey, secondaryKey: key() } },
    } as IndividualEnrollment);
    const hubs = dps.connection.instances[0]?.linkedHubs.map((hub) => hub.hostName) ?? [];
    const outcome = await registerOverHttps(dps, registrationId, deviceKey);
    expect(outcome.status).toBe('assigned');

    const state = (await client.getDeviceRegistrationState(registrationId)).responseBody;
    expect(state).toMatchObject({ registrationId, status: 'assigned', deviceId: registrationId });
    expect(hubs).toContain(state.assignedHub);
    expect(state.etag).toBeTruthy();
    // An individual enrollment shows its registration's state.
    expect((await client.getIndividualEnrollment(registrationId)).responseBody.registrationState).toMatchObject({ registrationId, status: 'assigned' });

    expect(await refusal(client.deleteDeviceRegistrationState(registrationId, '"stale"'))).toMatchObject({ name: 'InvalidEtagError', status: 412 });
    await client.deleteDeviceRegistrationState(state);
    expect(await refusal(client.getDeviceRegistrationState(registrationId))).toEqual({ name: 'Error', status: 404, errorCode: 404202 });
    expect(await refusal(client.deleteDeviceRegistrationState(registrationId))).toMatchObject({ status: 404, errorCode: 404202 });
    expect((await client.getIndividualEnrollment(registrationId)).responseBody.registrationState).toBeUndefined();
  });

  it('lists the registrations made through a group', async () => {
    const group = (await client.createOrUpdateEnrollmentGroup({ enrollmentGroupId: 'reg-grp', attestation: { type: 'symmetricKey' } } as EnrollmentGroup)).responseBody;
    const groupKey = group.attestation.symmetricKey?.primaryKey as string;
    const devices = ['grp-dev-1', 'grp-dev-2'];
    for (const registrationId of devices) {
      const outcome = await registerOverHttps(dps, registrationId, deriveDeviceKey(groupKey, registrationId));
      expect(outcome.status).toBe('assigned');
    }
    const query = client.createEnrollmentGroupDeviceRegistrationStateQuery({ query: '*' }, 'reg-grp', 1);
    const seen: string[] = [];
    let pages = 0;
    while (query.hasMoreResults && pages < 10) {
      const page = (await query.next(query.continuationToken)).responseBody as unknown as DeviceRegistrationState[];
      seen.push(...page.map((state) => state.registrationId));
      pages += 1;
    }
    expect(seen.sort()).toEqual(devices);
    expect(pages).toBe(2);
  });

  describe('access control', () => {
    it('refuses a token signed with a wrong key', async () => {
      const forged = dps.connection.serviceConnectionString.replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${key()}`);
      const intruder = serviceClient(forged, dps.connection.endpoints.https, dps.ca);
      expect(await refusal(intruder.getIndividualEnrollment('anything'))).toEqual({ name: 'UnauthorizedError', status: 401, errorCode: 401002 });
      expect(await refusal(intruder.createOrUpdateIndividualEnrollment({ registrationId: 'intruder', attestation: { type: 'symmetricKey' } } as IndividualEnrollment))).toMatchObject({
        status: 401,
      });
      expect(await refusal(client.getIndividualEnrollment('intruder'))).toMatchObject({ status: 404 });
    });

    it('refuses what a policy without the right asks for, and allows what it grants', async () => {
      const instances = instanceCollection(dps.server.store);
      const stored = await instances.get(dps.server.instances()[0]?.name ?? 'default');
      if (!stored) throw new Error('no stored instance');
      const reader = { keyName: 'reader', primaryKey: key(), secondaryKey: key(), rights: ['EnrollmentRead' as const] };
      const withReader: ProvisioningInstance = { ...stored.value, policies: [...stored.value.policies, reader] };
      await instances.put(withReader.name, withReader, { ifMatch: stored.etag });
      // The server re-reads instances from the store on its refresh timer.
      const deadline = Date.now() + 10_000;
      while (!dps.server.instances()[0]?.policies.some((policy) => policy.keyName === 'reader') && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const readOnly = serviceClient(serviceConnectionString(withReader, 'reader'), dps.connection.endpoints.https, dps.ca);

      await client.createOrUpdateIndividualEnrollment({ registrationId: 'guarded', attestation: { type: 'symmetricKey' } } as IndividualEnrollment);
      expect((await readOnly.getIndividualEnrollment('guarded')).responseBody.registrationId).toBe('guarded');
      expect(await refusal(readOnly.createOrUpdateIndividualEnrollment({ registrationId: 'by-reader', attestation: { type: 'symmetricKey' } } as IndividualEnrollment))).toEqual({
        name: 'UnauthorizedError',
        status: 401,
        errorCode: 401004,
      });
      expect(await refusal(readOnly.deleteIndividualEnrollment('guarded'))).toMatchObject({ status: 401, errorCode: 401004 });
      expect(await refusal(readOnly.getDeviceRegistrationState('guarded'))).toMatchObject({ status: 401, errorCode: 401004 });
      expect((await client.getIndividualEnrollment('guarded')).responseBody.registrationId).toBe('guarded');
      expect(await refusal(client.getIndividualEnrollment('by-reader'))).toMatchObject({ status: 404 });
    });
  });
});
