import { createRootCa, createVerificationCertificate, type Issued } from '@opendps/pki';
import { MAX_CA_CERTIFICATES, caCertificates, enrollmentGroups } from '@opendps/store';
import { instance, policy, startHarness, token, type Harness, type Reply } from './helpers';

/**
 * The CA certificate admin API's leftovers, over real HTTPS: one case-insensitive name per CA
 * everywhere, DPS's limit of 25 CAs per instance, strong If-Match, and a delete that cannot race
 * a group write into naming a CA that is gone.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = any;

const SCOPE = '0ne00000CA1';
const SCOPE_FULL = '0ne00000CA2';
const owner = policy('provisioningserviceowner');
const fullOwner = policy('provisioningserviceowner');

let h: Harness;
let root: Issued;
beforeAll(async () => {
  h = await startHarness([instance('a', SCOPE, [owner]), instance('full', SCOPE_FULL, [fullOwner])]);
  root = createRootCa({ commonName: 'Rules Root' });
});
afterAll(() => h.close());

function expectError(reply: Reply, status: number, errorCode: number): Doc {
  const body = reply.json as Doc;
  expect({ status: reply.status, errorCode: body?.errorCode }).toEqual({ status, errorCode });
  expect(body).toMatchObject({ trackingId: expect.any(String), message: expect.any(String), timestampUtc: expect.any(String) });
  return body;
}

const put = (name: string, options: { headers?: Record<string, string>; authorization?: string } = {}) =>
  h.call('PUT', `/certificates/${name}`, { body: { certificate: root.certificatePem }, ...options });
const caGroup = (id: string, caName: string) => ({ enrollmentGroupId: id, attestation: { type: 'x509', x509: { caReferences: { primary: caName } } } });

describe('CA certificate names are case-insensitive, as in caReferences', () => {
  it('finds, verifies, references, refuses to delete and deletes one CA under any casing', async () => {
    expect((await put('Case-Root')).status).toBe(200);
    expect(((await h.call('GET', '/certificates/case-root')).json as Doc).name).toBe('Case-Root');
    expectError(await put('CASE-ROOT', { headers: { 'if-none-match': '*' } }), 409, 409001);
    expect(((await h.call('GET', '/certificates')).json as Doc).value.map((ca: Doc) => ca.name)).toEqual(['Case-Root']);

    const code = ((await h.call('POST', '/certificates/CASE-root/generateVerificationCode')).json as Doc).properties.verificationCode as string;
    const verified = await h.call('POST', '/certificates/case-ROOT/verify', { body: { certificate: createVerificationCertificate(root, code).certificatePem } });
    expect((verified.json as Doc).properties.isVerified).toBe(true);

    expect((await h.call('PUT', '/enrollmentGroups/case-grp', { body: caGroup('case-grp', 'CASE-ROOT') })).status).toBe(200);
    expect(expectError(await h.call('DELETE', '/certificates/case-root'), 409, 409002).info).toEqual({ enrollmentGroups: 'case-grp' });
    expect((await h.call('DELETE', '/enrollmentGroups/case-grp')).status).toBe(204);
    expect((await h.call('DELETE', '/certificates/CASE-ROOT')).status).toBe(204);
    expectError(await h.call('GET', '/certificates/Case-Root'), 404, 404206);
  });
});

describe(`at most ${MAX_CA_CERTIFICATES} CA certificates per instance`, () => {
  it('refuses the next new one with 409003; replacing one, and adding after a delete, still work', async () => {
    const asFull = { authorization: token(fullOwner) };
    for (let i = 0; i < MAX_CA_CERTIFICATES; i++) expect((await put(`ca-${i}`, asFull)).status).toBe(200);
    expectError(await put('ca-extra', asFull), 409, 409003);
    expectError(await h.call('GET', '/certificates/ca-extra', asFull), 404, 404206);
    expect((await put('CA-3', asFull)).status).toBe(200);
    expect((await h.call('DELETE', '/certificates/ca-0', asFull)).status).toBe(204);
    expect((await put('ca-extra', asFull)).status).toBe(200);
    expect(await caCertificates(h.store, SCOPE_FULL).count()).toBe(MAX_CA_CERTIFICATES);
    // the limit is per instance: another instance is not affected
    expect((await put('elsewhere')).status).toBe(200);
  });
});

describe('conditional CA writes compare etags strongly', () => {
  it('answers W/"etag" with 412 on PUT, generateVerificationCode, verify and DELETE; * still matches', async () => {
    const etag = ((await put('weak-root')).json as Doc).etag as string;
    const weak = { headers: { 'if-match': `W/${etag}` } };
    expectError(await put('weak-root', weak), 412, 412001);
    expectError(await h.call('POST', '/certificates/weak-root/generateVerificationCode', weak), 412, 412001);
    expectError(await h.call('POST', '/certificates/weak-root/verify', { body: { certificate: root.certificatePem }, ...weak }), 412, 412001);
    expectError(await h.call('DELETE', '/certificates/weak-root', weak), 412, 412001);
    expect((await caCertificates(h.store, SCOPE).get('weak-root'))?.etag).toBe(etag);
    expect((await h.call('DELETE', '/certificates/weak-root', { headers: { 'if-match': '*' } })).status).toBe(204);
  });
});

describe('deleting a CA is atomic against a group write naming it', () => {
  it('over HTTPS: of a concurrent DELETE and group PUT exactly one succeeds, and no group is left naming a CA that is gone', async () => {
    const rounds = 10;
    for (let i = 0; i < rounds; i++) expect((await put(`race-${i}`)).status).toBe(200);
    for (let i = 0; i < rounds; i++) {
      const [deleted, written] = await Promise.all([
        h.call('DELETE', `/certificates/race-${i}`),
        h.call('PUT', `/enrollmentGroups/race-grp-${i}`, { body: caGroup(`race-grp-${i}`, `race-${i}`) }),
      ]);
      const ca = await caCertificates(h.store, SCOPE).get(`race-${i}`);
      const group = await enrollmentGroups(h.store, SCOPE).get(`race-grp-${i}`);
      expect(ca === undefined && group !== undefined).toBe(false);
      expect([deleted.status === 204, written.status === 200].filter(Boolean)).toHaveLength(1);
      if (deleted.status !== 204) expectError(deleted, 409, 409002);
      if (written.status !== 200) expectError(written, 400, 400010);
    }
  });

  it('a group write whose CA check passed but whose CA is deleted before the write is refused by the store (400010)', async () => {
    // The service checks caReferences first for its message; the store repeats the check in the
    // write's own atomic step, which is what this exercises: the CA is gone by the time of the put.
    const groups = enrollmentGroups(h.store, SCOPE);
    await expect(groups.put({ enrollmentGroupId: 'late-grp', attestation: { type: 'x509', x509: { caReferences: { primary: 'gone-ca' } } } })).rejects.toMatchObject({
      errorCode: 400010,
    });
    expect(await groups.get('late-grp')).toBeUndefined();
  });
});
