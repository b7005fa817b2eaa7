import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { certificateInfo, parseCertificate, type DeviceRegistrationState, type Logger } from '@opendps/model';
import { caCertificates, enrollmentGroups, enrollments, registrations } from '@opendps/store';
import { instance, policy, selfSigned, startHarness, token, type Harness, type Reply } from './helpers';

// Replies are JSON read field by field; typing every path would only restate the assertions.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = any;

const V = '?api-version=2021-10-01';
const SCOPE_A = '0ne0000000A';
const SCOPE_B = '0ne0000000B';
const ownerA = policy('provisioningserviceowner');
const readerA = policy('reader', ['EnrollmentRead']);
const registrarA = policy('registrar', ['RegistrationStatusRead']);
const ownerB = policy('provisioningserviceowner');

interface LogLine {
  level: string;
  fields: Record<string, unknown>;
}
const lines: LogLine[] = [];
const logger: Logger = {
  info: (fields) => lines.push({ level: 'info', fields: fields as Record<string, unknown> }),
  warn: (fields) => lines.push({ level: 'warn', fields: fields as Record<string, unknown> }),
  error: (fields) => lines.push({ level: 'error', fields: fields as Record<string, unknown> }),
  debug: () => undefined,
  child: (bindings) => ({ ...logger, info: (fields) => lines.push({ level: 'info', fields: { ...bindings, ...fields } }) }),
};

let h: Harness;
let device: { cert: string; key: string };
let other: { cert: string; key: string };

beforeAll(async () => {
  h = await startHarness(
    [instance('a', SCOPE_A, [ownerA, readerA, registrarA]), instance('b', SCOPE_B, [ownerB])],
    logger,
  );
  device = selfSigned(h.dir, 'dev-x509');
  other = selfSigned(h.dir, 'other-x509');
});
afterAll(() => h.close());

const asB = { authorization: token(ownerB) };

function expectJson(reply: Reply): void {
  expect(reply.headers['content-type']).toBe('application/json; charset=utf-8');
}

function expectError(reply: Reply, status: number, errorCode: number): void {
  expect({ status: reply.status, errorCode: (reply.json as { errorCode?: number } | undefined)?.errorCode }).toEqual({ status, errorCode });
  expectJson(reply);
  expect(reply.headers['x-ms-error-code']).toBe(String(errorCode));
  expect(reply.headers['x-ms-request-id']).toBe((reply.json as { trackingId: string }).trackingId);
}

const symmetricEnrollment = (registrationId: string, extra: object = {}) => ({
  registrationId,
  attestation: { type: 'symmetricKey' },
  ...extra,
});

describe('individual enrollments', () => {
  it('creates, reads without keys, serves the keys from attestationmechanism, and deletes', async () => {
    const put = await h.call('PUT', `/enrollments/sym-1${V}`, { body: symmetricEnrollment('sym-1') });
    expect(put.status).toBe(200);
    expectJson(put);
    const created = put.json as Doc;
    expect(Buffer.from(created.attestation.symmetricKey.primaryKey, 'base64')).toHaveLength(64);
    expect(created.etag).toMatch(/^"[0-9a-f-]{36}"$/);
    expect(put.headers.etag).toBe(created.etag);
    expect(created.createdDateTimeUtc).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$/);
    expect(created.provisioningStatus).toBe('enabled');

    const get = await h.call('GET', `/enrollments/sym-1${V}`);
    expect(get.status).toBe(200);
    const read = get.json as Doc;
    expect(read.attestation).toEqual({ type: 'symmetricKey', symmetricKey: {} });
    expect(read.etag).toBe(created.etag);
    expect(get.headers.etag).toBe(created.etag);

    // Node sends this POST with no body and no content type
    const mechanism = await h.call('POST', `/enrollments/sym-1/attestationmechanism${V}`);
    expect(mechanism.status).toBe(200);
    expect(mechanism.json).toEqual(created.attestation);

    const del = await h.call('DELETE', `/enrollments/sym-1${V}`);
    expect(del.status).toBe(204);
    expectJson(del);
    expectError(await h.call('GET', `/enrollments/sym-1${V}`), 404, 404201);
    expectError(await h.call('DELETE', `/enrollments/sym-1${V}`), 404, 404201);
  });

  it('keeps stored keys and creation time across a read-modify-write, and enforces If-Match', async () => {
    const primaryKey = Buffer.alloc(32, 1).toString('base64');
    const first = (await h.call('PUT', `/enrollments/rmw-1${V}`, {
      body: symmetricEnrollment('rmw-1', { attestation: { type: 'symmetricKey', symmetricKey: { primaryKey } } }),
    })).json as Doc;
    const read = (await h.call('GET', `/enrollments/rmw-1${V}`)).json as Doc;
    const modified = { ...read, provisioningStatus: 'disabled', initialTwin: { tags: { floor: 3 } } };

    const stale = await h.call('PUT', `/enrollments/rmw-1${V}`, { body: modified, headers: { 'if-match': '"00000000-0000-0000-0000-000000000000"' } });
    expectError(stale, 412, 412001);

    const put = await h.call('PUT', `/enrollments/rmw-1${V}`, { body: modified, headers: { 'if-match': read.etag } });
    expect(put.status).toBe(200);
    const updated = put.json as Doc;
    expect(updated.provisioningStatus).toBe('disabled');
    expect(updated.etag).not.toBe(read.etag);
    expect(updated.createdDateTimeUtc).toBe(first.createdDateTimeUtc);
    expect(updated.attestation.symmetricKey).toEqual(first.attestation.symmetricKey);
    expect(updated.attestation.symmetricKey.primaryKey).toBe(primaryKey);

    // the old etag is now stale, for PUT and DELETE alike
    expectError(await h.call('PUT', `/enrollments/rmw-1${V}`, { body: modified, headers: { 'if-match': read.etag } }), 412, 412001);
    expectError(await h.call('DELETE', `/enrollments/rmw-1${V}`, { headers: { 'if-match': read.etag } }), 412, 412001);
    // PUT without If-Match is an upsert; If-Match: * needs the record to exist
    expect((await h.call('PUT', `/enrollments/rmw-1${V}`, { body: modified })).status).toBe(200);
    expectError(await h.call('PUT', `/enrollments/rmw-2${V}`, { body: symmetricEnrollment('rmw-2'), headers: { 'if-match': '*' } }), 412, 412001);
    expect((await h.call('PUT', `/enrollments/rmw-1${V}`, { body: modified, headers: { 'if-match': '*' } })).status).toBe(200);
    const current = (await h.call('GET', `/enrollments/rmw-1${V}`)).json as Doc;
    expect((await h.call('DELETE', `/enrollments/rmw-1${V}`, { headers: { 'if-match': current.etag } })).status).toBe(204);
  });

  it('accepts any api-version or none, any path casing, and decodes strict-encoded ids', async () => {
    expect((await h.call('PUT', '/ENROLLMENTS/case%2Ddev?api-version=2018-04-01', { body: symmetricEnrollment('case-dev') })).status).toBe(200);
    const get = await h.call('GET', '/Enrollments/CASE-DEV');
    expect(get.status).toBe(200);
    expect((get.json as { registrationId: string }).registrationId).toBe('case-dev');
    expect((await h.call('POST', '/enrollments/case-dev/AttestationMechanism')).status).toBe(200);
  });

  it('stores X.509 client certificates, returns only their info, and keeps them on an info-only PUT', async () => {
    const put = await h.call('PUT', `/enrollments/dev-x509${V}`, {
      body: { registrationId: 'dev-x509', attestation: { type: 'x509', x509: { clientCertificates: { primary: { certificate: device.cert } } } } },
    });
    expect(put.status).toBe(200);
    const fingerprint = execFileSync('openssl', ['x509', '-noout', '-fingerprint', '-sha256', '-in', path.join(h.dir, 'dev-x509.pem')])
      .toString().split('=')[1]!.trim().replace(/:/g, '');
    const primary = (put.json as Doc).attestation.x509.clientCertificates.primary;
    expect(primary.certificate).toBeUndefined();
    expect(primary.info.sha256Thumbprint).toBe(fingerprint);
    expect(primary.info.subjectName).toBe('CN=dev-x509');

    const read = (await h.call('GET', `/enrollments/dev-x509${V}`)).json as Doc;
    expect(read.attestation.x509.clientCertificates.primary).toEqual({ info: primary.info });
    const back = await h.call('PUT', `/enrollments/dev-x509${V}`, { body: { ...read, provisioningStatus: 'disabled' }, headers: { 'if-match': read.etag } });
    expect(back.status).toBe(200);
    const stored = await enrollments(h.store, SCOPE_A).get('dev-x509');
    expect(stored?.provisioningStatus).toBe('disabled');
    expect(parseCertificate(stored!.attestation.x509!.clientCertificates!.primary!.certificate!).x509.fingerprint256.replace(/:/g, '')).toBe(fingerprint);
    expect((await enrollments(h.store, SCOPE_A).findByThumbprint(fingerprint.toLowerCase())).map((e) => e.registrationId)).toEqual(['dev-x509']);

    // info of a certificate we do not hold, or garbage, is refused
    const otherInfo = certificateInfo(parseCertificate(other.cert));
    const foreign = { registrationId: 'dev-x509', attestation: { type: 'x509', x509: { clientCertificates: { primary: { info: otherInfo } } } } };
    expectError(await h.call('PUT', `/enrollments/dev-x509${V}`, { body: foreign }), 400, 400005);
    expectError(await h.call('PUT', `/enrollments/new-x509${V}`, { body: { ...foreign, registrationId: 'new-x509' } }), 400, 400005);
    const garbage = { registrationId: 'bad-x509', attestation: { type: 'x509', x509: { clientCertificates: { primary: { certificate: 'LS0tLS1CRUdJTi0tLS0t' } } } } };
    expectError(await h.call('PUT', `/enrollments/bad-x509${V}`, { body: garbage }), 400, 400005);
  });
});

describe('enrollment groups', () => {
  it('creates a group under the SDK path forms and indexes it for registration', async () => {
    const put = await h.call('PUT', `/enrollmentGroups/grp%2D1${V}`, { body: { enrollmentGroupId: 'grp-1', attestation: { type: 'symmetricKey' } } });
    expect(put.status).toBe(200);
    const get = await h.call('GET', `/enrollmentgroups/GRP-1${V}`);
    expect((get.json as Doc).attestation.symmetricKey).toEqual({});
    const mechanism = await h.call('POST', `/enrollmentgroups/grp-1/attestationmechanism${V}`);
    expect(mechanism.json).toEqual((put.json as Doc).attestation);
    const symmetric = await enrollmentGroups(h.store, SCOPE_A).findByAttestationType('symmetricKey');
    expect(symmetric.map((g) => g.enrollmentGroupId)).toEqual(['grp-1']);
  });

  it('requires caReferences to name a CA certificate of the instance', async () => {
    const body = { enrollmentGroupId: 'grp-ca', attestation: { type: 'x509', x509: { caReferences: { primary: 'my-root' } } } };
    expectError(await h.call('PUT', `/enrollmentGroups/grp-ca${V}`, { body }), 400, 400010);
    const parsed = parseCertificate(other.cert);
    await caCertificates(h.store, SCOPE_A).put({ name: 'my-root', certificate: parsed.pem, info: certificateInfo(parsed), isVerified: false });
    expect((await h.call('PUT', `/enrollmentGroups/grp-ca${V}`, { body })).status).toBe(200);
    expect((await enrollmentGroups(h.store, SCOPE_A).findByCaReference('MY-ROOT')).map((g) => g.enrollmentGroupId)).toEqual(['grp-ca']);
    // the same name on another instance does not exist
    expectError(await h.call('PUT', `/enrollmentGroups/grp-ca${V}`, { body, ...asB }), 400, 400010);
  });

  it('refuses client certificates on a group and TPM on a group', async () => {
    const client = { enrollmentGroupId: 'grp-bad', attestation: { type: 'x509', x509: { clientCertificates: { primary: { certificate: device.cert } } } } };
    expectError(await h.call('PUT', `/enrollmentGroups/grp-bad${V}`, { body: client }), 400, 400010);
    const signing = { enrollmentGroupId: 'grp-sign', attestation: { type: 'x509', x509: { signingCertificates: { primary: { certificate: other.cert } } } } };
    const put = await h.call('PUT', `/enrollmentGroups/grp-sign${V}`, { body: signing });
    expect(put.status).toBe(200);
    expect((put.json as Doc).attestation.x509.signingCertificates.primary.certificate).toBeUndefined();
    const sha1 = certificateInfo(parseCertificate(other.cert)).sha1Thumbprint;
    expect((await enrollmentGroups(h.store, SCOPE_A).findByThumbprint(sha1)).map((g) => g.enrollmentGroupId)).toEqual(['grp-sign']);
  });
});

describe('queries', () => {
  const ids = ['q-1', 'q-2', 'q-3', 'q-4', 'q-5', 'q-6', 'q-7'];
  beforeAll(async () => {
    for (const id of ids) expect((await h.call('PUT', `/enrollments/${id}${V}`, { body: symmetricEnrollment(id), ...asB })).status).toBe(200);
  });

  it('pages across 3 pages, with x-ms-item-type always and no continuation on the last page', async () => {
    const seen: string[] = [];
    let continuation: string | undefined;
    const sizes: number[] = [];
    do {
      const reply = await h.call('POST', `/enrollments/query${V}`, {
        body: { query: '*' },
        ...asB,
        headers: { 'x-ms-max-item-count': '3', ...(continuation ? { 'x-ms-continuation': continuation } : {}) },
      });
      expect(reply.status).toBe(200);
      expectJson(reply);
      expect(reply.headers['x-ms-item-type']).toBe('Enrollment');
      const items = reply.json as Array<Doc>;
      for (const item of items) expect(item.attestation.symmetricKey).toEqual({});
      sizes.push(items.length);
      seen.push(...items.map((item) => item.registrationId as string));
      continuation = reply.headers['x-ms-continuation'] as string | undefined;
    } while (continuation !== undefined && sizes.length < 10);
    expect(sizes).toEqual([3, 3, 1]);
    expect(seen).toEqual(ids);
  });

  it('accepts SELECT * FROM, refuses other queries, bad page sizes and garbage continuations', async () => {
    const all = await h.call('POST', `/enrollments/query${V}`, { body: { query: 'SELECT * FROM enrollments' }, ...asB });
    expect((all.json as unknown[]).length).toBe(ids.length);
    expect(all.headers['x-ms-continuation']).toBeUndefined();
    const groups = await h.call('POST', `/enrollmentGroups/query${V}`, { body: { query: '*' }, ...asB });
    expect(groups.json).toEqual([]);
    expect(groups.headers['x-ms-item-type']).toBe('EnrollmentGroup');
    expectError(await h.call('POST', `/enrollments/query${V}`, { body: { query: "SELECT * FROM enrollments WHERE registrationId = 'q-1'" }, ...asB }), 400, 400007);
    expectError(await h.call('POST', `/enrollments/query${V}`, { body: { query: 42 }, ...asB }), 400, 400002);
    expectError(await h.call('POST', `/enrollments/query${V}`, { body: { query: '*' }, ...asB, headers: { 'x-ms-max-item-count': 'many' } }), 400, 400015);
    expectError(await h.call('POST', `/enrollments/query${V}`, { body: { query: '*' }, ...asB, headers: { 'x-ms-continuation': 'not a token!' } }), 400, 400015);
    expectError(await h.call('POST', `/enrollments/query${V}`, { body: { query: '*' }, ...asB, headers: { 'x-ms-continuation': 'Z2FyYmFnZQ' } }), 400, 400015);
  });

  it("keeps instances apart: one instance's key never reads another's data", async () => {
    expectError(await h.call('GET', `/enrollments/q-1${V}`), 404, 404201);
    expect((await h.call('GET', `/enrollments/q-1${V}`, asB)).status).toBe(200);
  });
});

describe('bulk', () => {
  it('creates with per-item errors through the trailing-slash path', async () => {
    await h.call('PUT', `/enrollments/bulk-0${V}`, { body: symmetricEnrollment('bulk-0') });
    const reply = await h.call('POST', `/enrollments/${V}`, {
      body: {
        mode: 'create',
        enrollments: [symmetricEnrollment('bulk-1'), symmetricEnrollment('bulk-0'), symmetricEnrollment('-bad-'), symmetricEnrollment('bulk-2', { provisioningStatus: 7 })],
      },
    });
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual({
      isSuccessful: false,
      errors: [
        { registrationId: 'bulk-0', errorCode: 409001, errorStatus: expect.any(String) },
        { registrationId: '-bad-', errorCode: 400003, errorStatus: expect.any(String) },
        { registrationId: 'bulk-2', errorCode: 400002, errorStatus: expect.any(String) },
      ],
    });
    expect((await h.call('GET', `/enrollments/bulk-1${V}`)).status).toBe(200);
    expectError(await h.call('GET', `/enrollments/bulk-2${V}`), 404, 404201);
  });

  it('updates, updates if the etag matches, and deletes', async () => {
    const current = (await h.call('GET', `/enrollments/bulk-1${V}`)).json as Doc;
    const update = await h.call('POST', `/enrollments${V}`, {
      body: { mode: 'updateIfMatchETag', enrollments: [{ ...current, provisioningStatus: 'disabled' }, { ...symmetricEnrollment('bulk-0'), etag: '"stale"' }] },
    });
    expect(update.json).toEqual({ isSuccessful: false, errors: [{ registrationId: 'bulk-0', errorCode: 412001, errorStatus: expect.any(String) }] });
    expect(((await h.call('GET', `/enrollments/bulk-1${V}`)).json as Doc).provisioningStatus).toBe('disabled');
    const upsert = await h.call('POST', `/enrollments${V}`, { body: { mode: 'update', enrollments: [symmetricEnrollment('bulk-3')] } });
    expect(upsert.json).toEqual({ isSuccessful: true, errors: [] });
    const del = await h.call('POST', `/enrollments/${V}`, {
      body: { mode: 'delete', enrollments: [{ registrationId: 'bulk-1' }, { registrationId: 'bulk-3' }, { registrationId: 'never-was' }] },
    });
    expect(del.json).toEqual({ isSuccessful: false, errors: [{ registrationId: 'never-was', errorCode: 404201, errorStatus: expect.any(String) }] });
    expectError(await h.call('GET', `/enrollments/bulk-3${V}`), 404, 404201);
  });

  it('works for groups and refuses bad envelopes', async () => {
    const groups = await h.call('POST', `/enrollmentGroups/${V}`, {
      body: { mode: 'create', enrollmentGroups: [{ enrollmentGroupId: 'bulk-grp', attestation: { type: 'symmetricKey' } }] },
    });
    expect(groups.json).toEqual({ isSuccessful: true, errors: [] });
    expect((await h.call('GET', `/enrollmentGroups/bulk-grp${V}`)).status).toBe(200);
    const eleven = Array.from({ length: 11 }, (_, i) => symmetricEnrollment(`many-${i}`));
    expectError(await h.call('POST', `/enrollments/${V}`, { body: { mode: 'create', enrollments: eleven } }), 400, 400008);
    expectError(await h.call('POST', `/enrollments/${V}`, { body: { mode: 'explode', enrollments: [symmetricEnrollment('x-1')] } }), 400, 400002);
    expectError(await h.call('POST', `/enrollments/${V}`, { body: { mode: 'create', enrollments: 'no' } }), 400, 400002);
    expectError(await h.call('POST', `/enrollments/${V}`, { body: [1, 2] }), 400, 400002);
    const noEtag = await h.call('POST', `/enrollments/${V}`, { body: { mode: 'updateIfMatchETag', enrollments: [symmetricEnrollment('bulk-0')] } });
    expect(noEtag.json).toEqual({ isSuccessful: false, errors: [{ registrationId: 'bulk-0', errorCode: 400002, errorStatus: expect.any(String) }] });
  });
});

describe('registrations', () => {
  const state = (registrationId: string, enrollmentGroupId?: string, symmetric = false): DeviceRegistrationState => ({
    registrationId,
    status: 'assigned',
    assignedHub: 'hub-1.localhost',
    deviceId: registrationId,
    ...(enrollmentGroupId ? (symmetric ? { symmetricKey: { enrollmentGroupId } } : { x509: { enrollmentGroupId } }) : {}),
  });
  beforeAll(async () => {
    const repository = registrations(h.store, SCOPE_A);
    for (const s of [state('r-1', 'grp-1'), state('r-2', 'grp-1', true), state('r-3', 'grp-1'), state('r-4', 'grp-2'), state('r-5')]) {
      await repository.put(s);
    }
  });

  it('gets a registration state with its etag', async () => {
    const reply = await h.call('GET', `/registrations/r-5${V}`);
    expect(reply.status).toBe(200);
    expect(reply.json).toMatchObject({ registrationId: 'r-5', status: 'assigned', assignedHub: 'hub-1.localhost' });
    expect(reply.headers.etag).toBe((reply.json as { etag: string }).etag);
    expectError(await h.call('GET', `/registrations/nobody${V}`), 404, 404202);
  });

  it("queries one group's registrations page by page", async () => {
    const first = await h.call('POST', `/registrations/grp%2D1/query${V}`, { body: { query: '*' }, headers: { 'x-ms-max-item-count': '2' } });
    expect(first.headers['x-ms-item-type']).toBe('DeviceRegistration');
    expect((first.json as DeviceRegistrationState[]).map((s) => s.registrationId)).toEqual(['r-1', 'r-2']);
    const continuation = first.headers['x-ms-continuation'] as string;
    expect(continuation).toBeTruthy();
    const second = await h.call('POST', `/registrations/grp-1/query${V}`, { body: { query: '*' }, headers: { 'x-ms-max-item-count': '2', 'x-ms-continuation': continuation } });
    expect((second.json as DeviceRegistrationState[]).map((s) => s.registrationId)).toEqual(['r-3']);
    expect(second.headers['x-ms-continuation']).toBeUndefined();
    const none = await h.call('POST', `/registrations/grp-9/query${V}`, { body: { query: 'SELECT * FROM enrollments' } });
    expect(none.json).toEqual([]);
    expect(none.headers['x-ms-item-type']).toBe('DeviceRegistration');
  });

  it('deletes with If-Match and 404s afterwards', async () => {
    const current = (await h.call('GET', `/registrations/r-4${V}`)).json as { etag: string };
    expectError(await h.call('DELETE', `/registrations/r-4${V}`, { headers: { 'if-match': '"nope"' } }), 412, 412001);
    expect((await h.call('DELETE', `/registrations/r-4${V}`, { headers: { 'if-match': current.etag } })).status).toBe(204);
    expectError(await h.call('GET', `/registrations/r-4${V}`), 404, 404202);
    expectError(await h.call('DELETE', `/registrations/r-4${V}`), 404, 404202);
  });
});

describe('authorization over HTTP', () => {
  it('refuses missing, wrong-key, expired and wrong-resource tokens', async () => {
    expectError(await h.call('GET', `/enrollments/grp-1${V}`, { authorization: null }), 401, 401000);
    expectError(await h.call('GET', `/enrollments/x${V}`, { authorization: token({ ...ownerA, primaryKey: ownerB.primaryKey.replace(/^./, 'A') }) }), 401, 401002);
    expectError(await h.call('GET', `/enrollments/x${V}`, { authorization: token(ownerA, { expiry: Math.floor(Date.now() / 1000) - 3600 }) }), 401, 401003);
    expectError(await h.call('GET', `/enrollments/x${V}`, { authorization: token(ownerA, { resource: 'localhost/registrations' }) }), 401, 401005);
    expectError(await h.call('GET', `/enrollments/x${V}`, { authorization: 'SharedAccessSignature garbage' }), 401, 401006);
    expect((await h.call('GET', `/enrollments/case-dev${V}`, { authorization: token(ownerA, { resource: 'localhost/enrollments' }) })).status).toBe(200);
  });

  it('checks the policy rights per operation', async () => {
    const reader = { authorization: token(readerA) };
    expect((await h.call('GET', `/enrollments/case-dev${V}`, reader)).status).toBe(200);
    expect((await h.call('POST', `/enrollments/query${V}`, { body: { query: '*' }, ...reader })).status).toBe(200);
    expectError(await h.call('PUT', `/enrollments/case-dev${V}`, { body: symmetricEnrollment('case-dev'), ...reader }), 401, 401004);
    expectError(await h.call('DELETE', `/enrollments/case-dev${V}`, reader), 401, 401004);
    expectError(await h.call('POST', `/enrollments/case-dev/attestationmechanism${V}`, reader), 401, 401004);
    expectError(await h.call('POST', `/enrollments/${V}`, { body: { mode: 'delete', enrollments: [{ registrationId: 'case-dev' }] }, ...reader }), 401, 401004);
    expectError(await h.call('GET', `/registrations/r-5${V}`, reader), 401, 401004);
    const registrar = { authorization: token(registrarA) };
    expect((await h.call('GET', `/registrations/r-5${V}`, registrar)).status).toBe(200);
    expectError(await h.call('DELETE', `/registrations/r-5${V}`, registrar), 401, 401004);
    expectError(await h.call('GET', `/enrollments/case-dev${V}`, registrar), 401, 401004);
    expect((await h.call('GET', `/enrollments/case-dev${V}`)).status).toBe(200);
  });
});

describe('bad input', () => {
  it('answers every malformed request with a coded JSON error and keeps serving', async () => {
    expectError(await h.call('PUT', `/enrollments/bad-1${V}`, { body: '{"registrationId": "bad-1", ' }), 400, 400001);
    expectError(await h.call('PUT', `/enrollments/bad-1${V}`, { body: '"just a string"' }), 400, 400002);
    expectError(await h.call('PUT', `/enrollments/bad-1${V}`, { body: { registrationId: 'bad-1', attestation: 'x' } }), 400, 400002);
    expectError(await h.call('PUT', `/enrollments/bad-1${V}`, { body: symmetricEnrollment('bad-1', { iotHubs: 'hub' }) }), 400, 400002);
    expectError(await h.call('PUT', `/enrollments/bad-1${V}`, { body: { registrationId: 'bad-1', attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: 'short' } } } }), 400, 400006);
    expectError(await h.call('PUT', `/enrollments/bad-1${V}`, { body: { registrationId: 'bad-1', attestation: { type: 'tpm', tpm: { endorsementKey: 'AAAA' } } } }), 400, 400011);
    expectError(await h.call('PUT', `/enrollments/bad-1${V}`, { body: { registrationId: 'bad-1' } }), 400, 400002);
    expectError(await h.call('PUT', `/enrollments/bad-1${V}`, { body: symmetricEnrollment('bad-2') }), 400, 400009);
    expectError(await h.call('PUT', `/enrollments/bad-1${V}`), 400, 400002);
    expectError(await h.call('PUT', `/enrollments/-bad${V}`, { body: symmetricEnrollment('-bad') }), 400, 400003);
    expectError(await h.call('GET', `/enrollments/${'a'.repeat(129)}${V}`), 400, 400003);
    expectError(await h.call('GET', `/enrollments/a%ZZ${V}`), 400, 400003);
    expectError(await h.call('PUT', `/enrollments/bad-1${V}`, { body: 'registrationId=bad-1', headers: { 'content-type': 'text/plain' } }), 415, 415001);
    const huge = symmetricEnrollment('bad-1', { initialTwin: { tags: { blob: 'x'.repeat(200 * 1024) } } });
    expectError(await h.call('PUT', `/enrollments/bad-1${V}`, { body: huge }), 413, 413001);
    expectError(await h.call('GET', `/enrollments/a/b${V}`), 404, 404001);
    expectError(await h.call('POST', `/enrollments/bad-1${V}`, { body: {} }), 405, 405001);
    expectError(await h.call('GET', `/enrollments/bad-1${V}`), 404, 404201);
    // still serving
    const ok = await h.call('PUT', `/enrollments/after-bad${V}`, { body: symmetricEnrollment('after-bad') });
    expect(ok.status).toBe(200);
  });

  it('logs one ServiceOperations line per call without secrets', async () => {
    lines.length = 0;
    await h.call('GET', `/enrollments/after-bad${V}`);
    await h.call('GET', `/enrollments/nobody${V}`);
    const service = lines.filter((line) => line.fields.category === 'ServiceOperations');
    expect(service.map((line) => [line.fields.operation, line.fields.id, line.fields.status, line.fields.instance])).toEqual([
      ['getEnrollment', 'after-bad', 200, 'a'],
      ['getEnrollment', 'nobody', 404, 'a'],
    ]);
    expect(typeof service[0]!.fields.durationMs).toBe('number');
    const text = JSON.stringify(lines);
    expect(text).not.toContain(ownerA.primaryKey);
    expect(text).not.toContain('sig=');
  });
});

describe('internal failures', () => {
  it('answers 500 with a trackingId and logs it when the store fails', async () => {
    const broken = await startHarness([instance('a', SCOPE_A, [ownerA])], logger);
    try {
      lines.length = 0;
      await broken.store.close();
      const reply = await broken.call('GET', `/enrollments/dev-1${V}`);
      expectError(reply, 500, 500001);
      const trackingId = (reply.json as { trackingId: string }).trackingId;
      expect(lines.some((line) => line.level === 'error' && line.fields.trackingId === trackingId)).toBe(true);
      expectError(await broken.call('GET', `/enrollments/dev-1${V}`, { authorization: null }), 401, 401000);
    } finally {
      await broken.close().catch(() => undefined);
    }
  });
});
