import { X509Certificate } from 'node:crypto';
import { createLeaf, createRootCa, createVerificationCertificate, type Issued } from '@opendps/pki';
import { caCertificates } from '@opendps/store';
import { isServiceApiPath, resolveRoute } from '../src/routes';
import { instance, policy, startHarness, token, type Harness, type Reply } from './helpers';

// Replies are JSON read field by field; typing every path would only restate the assertions.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = any;

const SCOPE_A = '0ne00000C0A';
const SCOPE_B = '0ne00000C0B';
const ownerA = policy('provisioningserviceowner');
const enrollmentAdminA = policy('enrollments', ['EnrollmentRead', 'EnrollmentWrite', 'RegistrationStatusRead', 'RegistrationStatusWrite']);
const ownerB = policy('provisioningserviceowner');
const asB = { authorization: token(ownerB) };

const HOUR = 3600_000;
let h: Harness;
let rootA: Issued;
let rootB: Issued;

beforeAll(async () => {
  h = await startHarness([instance('a', SCOPE_A, [ownerA, enrollmentAdminA]), instance('b', SCOPE_B, [ownerB])]);
  rootA = createRootCa({ commonName: 'Root A' });
  rootB = createRootCa({ commonName: 'Root B', organization: 'Contoso' });
});
afterAll(() => h.close());

function expectError(reply: Reply, status: number, errorCode: number): Doc {
  expect({ status: reply.status, errorCode: (reply.json as Doc)?.errorCode }).toEqual({ status, errorCode });
  expect(reply.headers['x-ms-error-code']).toBe(String(errorCode));
  return reply.json;
}

async function put(name: string, certificate: string, options: { headers?: Record<string, string>; authorization?: string } = {}): Promise<Reply> {
  return h.call('PUT', `/certificates/${name}`, { body: { certificate }, ...options });
}

async function pendingCode(name: string, options: { authorization?: string } = {}): Promise<string> {
  const reply = await h.call('POST', `/certificates/${name}/generateVerificationCode`, options);
  expect(reply.status).toBe(200);
  return (reply.json as Doc).properties.verificationCode as string;
}

const sha1 = (pem: string): string => new X509Certificate(pem).fingerprint.replace(/:/g, '');

describe('CA certificate lifecycle', () => {
  it('uploads, reads, lists, verifies by proof of possession (single-use code) and deletes', async () => {
    const created = await put('root-a', rootA.certificatePem);
    expect(created.status).toBe(200);
    const body = created.json as Doc;
    expect(body).toMatchObject({
      id: '/certificates/root-a',
      name: 'root-a',
      type: 'Microsoft.Devices/ProvisioningServices/Certificates',
      properties: {
        subject: 'CN=Root A',
        thumbprint: sha1(rootA.certificatePem),
        isVerified: false,
        certificate: new X509Certificate(rootA.certificatePem).toString(),
      },
    });
    expect(body.properties.thumbprintSha256).toBe(new X509Certificate(rootA.certificatePem).fingerprint256.replace(/:/g, ''));
    expect(body.properties.verificationCode).toBeUndefined();
    expect(Date.parse(body.properties.expiry)).toBe(Date.parse(new X509Certificate(rootA.certificatePem).validTo));
    expect(body.properties.expiry).toMatch(/^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$/);
    expect(body.properties.created).toMatch(/GMT$/);
    expect(body.etag).toEqual(expect.any(String));
    expect(created.headers.etag).toBe(body.etag);

    const got = await h.call('GET', '/certificates/root-a');
    expect(got.status).toBe(200);
    expect(got.json).toEqual(body);

    const code = await pendingCode('root-a');
    expect(code).toMatch(/^[0-9A-F]{48}$/);
    const pending = (await h.call('GET', '/certificates/root-a')).json as Doc;
    expect(pending.properties).toMatchObject({ verificationCode: code, isVerified: false });
    expect(pending.etag).not.toBe(body.etag);

    const verified = await h.call('POST', '/certificates/root-a/verify', {
      body: { certificate: createVerificationCertificate(rootA, code).certificatePem },
    });
    expect(verified.status).toBe(200);
    expect((verified.json as Doc).properties.isVerified).toBe(true);
    expect((verified.json as Doc).properties.verificationCode).toBeUndefined();
    const stored = await caCertificates(h.store, SCOPE_A).get('root-a');
    expect(stored).toMatchObject({ isVerified: true });
    expect(stored?.verificationCode).toBeUndefined();

    // the code is used up: the same proof again is refused
    const replay = await h.call('POST', '/certificates/root-a/verify', {
      body: { certificate: createVerificationCertificate(rootA, code).certificatePem },
    });
    expectError(replay, 400, 400016);

    const list = await h.call('GET', '/certificates');
    expect(list.status).toBe(200);
    expect((list.json as Doc).value.map((item: Doc) => [item.name, item.properties.isVerified])).toEqual([['root-a', true]]);

    const deleted = await h.call('DELETE', '/certificates/root-a', { headers: { 'if-match': (verified.json as Doc).etag } });
    expect(deleted.status).toBe(204);
    expectError(await h.call('GET', '/certificates/root-a'), 404, 404206);
    expectError(await h.call('DELETE', '/certificates/root-a'), 404, 404206);
    expect((await h.call('GET', '/certificates/')).json).toEqual({ value: [] });
  });

  it('accepts PEM, base64 DER, base64 of the PEM and the ARM body {properties: {certificate}}', async () => {
    const x509 = new X509Certificate(rootB.certificatePem);
    const forms = {
      pem: rootB.certificatePem,
      der: x509.raw.toString('base64'),
      pemB64: Buffer.from(rootB.certificatePem).toString('base64'),
    };
    for (const [name, certificate] of Object.entries(forms)) {
      const reply = await put(`form-${name}`, certificate);
      expect(reply.status).toBe(200);
      expect((reply.json as Doc).properties).toMatchObject({ subject: 'O=Contoso, CN=Root B', thumbprint: sha1(rootB.certificatePem) });
    }
    const arm = await h.call('PUT', '/certificates/form-arm', { body: { properties: { certificate: forms.der, isVerified: false } } });
    expect(arm.status).toBe(200);
    expect((arm.json as Doc).properties.certificate).toBe(x509.toString());
    for (const name of ['form-pem', 'form-der', 'form-pemB64', 'form-arm']) expect((await h.call('DELETE', `/certificates/${name}`)).status).toBe(204);
  });

  it('keeps verification when the same certificate is uploaded again, and resets it when the certificate changes', async () => {
    await put('replace', rootA.certificatePem);
    const code = await pendingCode('replace');
    await h.call('POST', '/certificates/replace/verify', { body: { certificate: createVerificationCertificate(rootA, code).certificatePem } });

    const again = await put('replace', rootA.certificatePem);
    expect(again.status).toBe(200);
    expect((again.json as Doc).properties.isVerified).toBe(true);

    await pendingCode('replace');
    const replaced = await put('replace', rootB.certificatePem, { headers: { 'if-match': (again.json as Doc).etag } });
    expectError(replaced, 412, 412001);
    const current = (await h.call('GET', '/certificates/replace')).json as Doc;
    const changed = await put('replace', rootB.certificatePem, { headers: { 'if-match': current.etag } });
    expect(changed.status).toBe(200);
    expect((changed.json as Doc).properties).toMatchObject({ isVerified: false, subject: 'O=Contoso, CN=Root B' });
    expect((changed.json as Doc).properties.verificationCode).toBeUndefined();
    expect((changed.json as Doc).properties.created).toBe(current.properties.created);
    const stored = await caCertificates(h.store, SCOPE_A).get('replace');
    expect(stored).toMatchObject({ isVerified: false });
    expect(stored?.verificationCode).toBeUndefined();
    // a proof for the old CA does not verify the new one
    const code2 = await pendingCode('replace');
    expectError(
      await h.call('POST', '/certificates/replace/verify', { body: { certificate: createVerificationCertificate(rootA, code2).certificatePem } }),
      400,
      400005,
    );
    expect((await h.call('DELETE', '/certificates/replace')).status).toBe(204);
  });
});

describe('refusals', () => {
  it('refuses bad uploads with coded 400s, and stale or impossible conditions with 412/409', async () => {
    const leaf = createLeaf(rootA, { commonName: 'not-a-ca' });
    const expired = createRootCa({ commonName: 'Old', notBefore: new Date(Date.now() - 48 * HOUR), notAfter: new Date(Date.now() - 24 * HOUR) });
    expectError(await put('bad', leaf.certificatePem), 400, 400005);
    expectError(await put('bad', `${rootA.certificatePem}${rootB.certificatePem}`), 400, 400005);
    expectError(await put('bad', expired.certificatePem), 400, 400005);
    expectError(await put('bad', 'not a certificate!'), 400, 400005);
    expectError(await put('bad', Buffer.from('garbage').toString('base64')), 400, 400005);
    expectError(await h.call('PUT', '/certificates/bad', { body: {} }), 400, 400002);
    expectError(await h.call('PUT', '/certificates/bad', { body: { certificate: 42 } }), 400, 400002);
    expectError(await h.call('PUT', '/certificates/bad', { body: [rootA.certificatePem] }), 400, 400002);
    expectError(await h.call('PUT', '/certificates/bad'), 400, 400002);
    expectError(await h.call('PUT', '/certificates/bad', { body: '{"certificate":' }), 400, 400001);
    expectError(await h.call('PUT', '/certificates/bad', { body: { certificate: rootA.certificatePem, isVerified: true } }), 400, 400002);
    expectError(
      await h.call('PUT', '/certificates/bad', { body: { properties: { certificate: rootA.certificatePem, isVerified: true } } }),
      400,
      400002,
    );
    expectError(await put('bad%20name', rootA.certificatePem), 400, 400002);
    expectError(await put('x'.repeat(65), rootA.certificatePem), 400, 400002);
    expectError(await put('bad', rootA.certificatePem, { headers: { 'if-match': '*' } }), 412, 412001);
    expect((await caCertificates(h.store, SCOPE_A).list()).items).toEqual([]);

    await put('cond', rootA.certificatePem);
    expectError(await put('cond', rootA.certificatePem, { headers: { 'if-none-match': '*' } }), 409, 409001);
    expectError(await put('cond', rootA.certificatePem, { headers: { 'if-match': '"stale"' } }), 412, 412001);
    expectError(await h.call('DELETE', '/certificates/cond', { headers: { 'if-match': '"stale"' } }), 412, 412001);
    expectError(await h.call('POST', '/certificates/cond/generateVerificationCode', { headers: { 'if-match': '"stale"' } }), 412, 412001);
    expect((await h.call('DELETE', '/certificates/cond', { headers: { 'if-match': '*' } })).status).toBe(204);
  });

  it('refuses proofs with the wrong CN, another signer, an expired validity, or no pending code, and keeps the CA unverified', async () => {
    await put('pop', rootA.certificatePem);
    const proof = (issuer: Issued, commonName: string, validity: { notBefore?: Date; notAfter?: Date } = {}): Doc => ({
      body: { certificate: createLeaf(issuer, { commonName, ...validity }).certificatePem },
    });

    const noCode = expectError(await h.call('POST', '/certificates/pop/verify', proof(rootA, 'ABC')), 400, 400016);
    expect(noCode.message).toMatch(/generateVerificationCode/);

    const code = await pendingCode('pop');
    const wrongCn = expectError(await h.call('POST', '/certificates/pop/verify', proof(rootA, 'NOT-THE-CODE')), 400, 400005);
    expect(wrongCn.message).toMatch(/common name/);
    const otherSigner = expectError(await h.call('POST', '/certificates/pop/verify', proof(rootB, code)), 400, 400005);
    expect(otherSigner.message).toMatch(/not signed by the CA/);
    const selfSigned = expectError(await h.call('POST', '/certificates/pop/verify', proof(undefined as unknown as Issued, code)), 400, 400005);
    expect(selfSigned.message).toMatch(/not signed by the CA/);
    const expired = expectError(
      await h.call('POST', '/certificates/pop/verify', proof(rootA, code, { notBefore: new Date(Date.now() - 3 * HOUR), notAfter: new Date(Date.now() - HOUR) })),
      400,
      400005,
    );
    expect(expired.message).toMatch(/expired/);
    const notYet = expectError(
      await h.call('POST', '/certificates/pop/verify', proof(rootA, code, { notBefore: new Date(Date.now() + HOUR), notAfter: new Date(Date.now() + 3 * HOUR) })),
      400,
      400005,
    );
    expect(notYet.message).toMatch(/not valid yet/);
    expectError(await h.call('POST', '/certificates/pop/verify', { body: { certificate: 'garbage!' } }), 400, 400005);
    expectError(await h.call('POST', '/certificates/pop/verify'), 400, 400002);
    expectError(await h.call('POST', '/certificates/pop/verify', { ...proof(rootA, code), headers: { 'if-match': '"stale"' } }), 412, 412001);
    expectError(await h.call('POST', '/certificates/nope/verify', proof(rootA, code)), 404, 404206);
    expectError(await h.call('POST', '/certificates/nope/generateVerificationCode'), 404, 404206);

    // every refusal left the CA unverified with its code still pending; a new code replaces the old one
    expect(await caCertificates(h.store, SCOPE_A).get('pop')).toMatchObject({ isVerified: false, verificationCode: code });
    const newer = await pendingCode('pop');
    expect(newer).not.toBe(code);
    expectError(await h.call('POST', '/certificates/pop/verify', proof(rootA, code)), 400, 400005);
    // the CN comparison is case-insensitive, as on DPS
    expect((await h.call('POST', '/certificates/pop/verify', proof(rootA, newer.toLowerCase()))).status).toBe(200);
    expect((await h.call('DELETE', '/certificates/pop')).status).toBe(204);
  });

  it('refuses to delete a CA that enrollment groups reference, naming them (409)', async () => {
    await put('in-use', rootA.certificatePem);
    const group = (id: string) => ({ enrollmentGroupId: id, attestation: { type: 'x509', x509: { caReferences: { primary: 'in-use' } } } });
    expect((await h.call('PUT', '/enrollmentGroups/grp-2', { body: group('grp-2') })).status).toBe(200);
    expect((await h.call('PUT', '/enrollmentGroups/grp-1', { body: group('grp-1') })).status).toBe(200);

    const refused = expectError(await h.call('DELETE', '/certificates/in-use'), 409, 409002);
    expect(refused.message).toContain("'grp-1', 'grp-2'");
    expect(refused.info).toEqual({ enrollmentGroups: 'grp-1,grp-2' });
    expect((await h.call('GET', '/certificates/in-use')).status).toBe(200);

    expect((await h.call('DELETE', '/enrollmentGroups/grp-1')).status).toBe(204);
    expect(expectError(await h.call('DELETE', '/certificates/in-use'), 409, 409002).info).toEqual({ enrollmentGroups: 'grp-2' });
    expect((await h.call('DELETE', '/enrollmentGroups/grp-2')).status).toBe(204);
    expect((await h.call('DELETE', '/certificates/in-use')).status).toBe(204);
  });

  it('answers unknown actions 404 and wrong methods 405', async () => {
    expectError(await h.call('GET', '/certificates/x/unknown'), 404, 404001);
    expectError(await h.call('GET', '/certificates/x/verify/more'), 404, 404001);
    expectError(await h.call('POST', '/certificates/x'), 405, 405001);
    expectError(await h.call('GET', '/certificates/x/verify'), 405, 405001);
    expectError(await h.call('PUT', '/certificates/x/generateVerificationCode'), 405, 405001);
    expectError(await h.call('DELETE', '/certificates'), 405, 405001);
  });
});

describe('authorization and isolation', () => {
  it('needs the ServiceConfig right for every route (401004) and a token at all (401000)', async () => {
    await put('guarded', rootA.certificatePem);
    const asEnrollmentAdmin = { authorization: token(enrollmentAdminA) };
    const calls: Array<[string, string, unknown]> = [
      ['GET', '/certificates', undefined],
      ['GET', '/certificates/guarded', undefined],
      ['PUT', '/certificates/guarded', { certificate: rootB.certificatePem }],
      ['DELETE', '/certificates/guarded', undefined],
      ['POST', '/certificates/guarded/generateVerificationCode', undefined],
      ['POST', '/certificates/guarded/verify', { certificate: rootA.certificatePem }],
    ];
    for (const [method, path, body] of calls) {
      expectError(await h.call(method, path, { body, ...asEnrollmentAdmin }), 401, 401004);
      expectError(await h.call(method, path, { body, authorization: null }), 401, 401000);
    }
    expect(await caCertificates(h.store, SCOPE_A).get('guarded')).toMatchObject({ isVerified: false, info: { subjectName: 'CN=Root A' } });
    expect((await h.call('DELETE', '/certificates/guarded')).status).toBe(204);
  });

  it("keeps each instance's CA certificates apart: the signing key picks the instance", async () => {
    await put('shared-name', rootA.certificatePem);
    const codeA = await pendingCode('shared-name');

    expectError(await h.call('GET', '/certificates/shared-name', asB), 404, 404206);
    expect((await h.call('GET', '/certificates', asB)).json).toEqual({ value: [] });
    expectError(await h.call('POST', '/certificates/shared-name/generateVerificationCode', asB), 404, 404206);
    expectError(
      await h.call('POST', '/certificates/shared-name/verify', { ...asB, body: { certificate: createVerificationCertificate(rootA, codeA).certificatePem } }),
      404,
      404206,
    );
    expectError(await h.call('DELETE', '/certificates/shared-name', asB), 404, 404206);

    // B registers its own CA under the same name; each side sees only its own
    const b = await put('shared-name', rootB.certificatePem, asB);
    expect(b.status).toBe(200);
    expect((b.json as Doc).properties.subject).toBe('O=Contoso, CN=Root B');
    expect(((await h.call('GET', '/certificates/shared-name')).json as Doc).properties).toMatchObject({ subject: 'CN=Root A', verificationCode: codeA });
    expect(((await h.call('GET', '/certificates', asB)).json as Doc).value.map((item: Doc) => item.properties.subject)).toEqual(['O=Contoso, CN=Root B']);

    // A's code does not verify B's CA, even signed by B's own key
    await pendingCode('shared-name', asB);
    expectError(
      await h.call('POST', '/certificates/shared-name/verify', { ...asB, body: { certificate: createVerificationCertificate(rootB, codeA).certificatePem } }),
      400,
      400005,
    );
    expect((await h.call('DELETE', '/certificates/shared-name', asB)).status).toBe(204);
    expect((await h.call('GET', '/certificates/shared-name')).status).toBe(200);
    expect((await h.call('DELETE', '/certificates/shared-name')).status).toBe(204);
  });
});

describe('routing', () => {
  it('claims /certificates without touching the device API or the other service routes', () => {
    expect(isServiceApiPath('/certificates')).toBe(true);
    expect(isServiceApiPath('/Certificates/root/verify')).toBe(true);
    expect(isServiceApiPath('/0ne00000C0A/registrations/certificates/register')).toBe(false);
    expect(isServiceApiPath('/certificatesX')).toBe(false);
    expect(resolveRoute('POST', '/certificates/ca-1/GenerateVerificationCode')).toEqual({
      operation: 'generateVerificationCode', id: 'ca-1', right: 'ServiceConfig',
    });
    expect(resolveRoute('GET', '/certificates/')).toEqual({ operation: 'listCertificates', right: 'ServiceConfig' });
    expect(resolveRoute('GET', '/enrollments/certificates')).toMatchObject({ operation: 'getEnrollment', id: 'certificates' });
  });
});
