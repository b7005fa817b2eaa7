import https from 'node:https';
import { X509Certificate } from 'node:crypto';
import { DpsError, Errors } from '@opendps/model';
import { createIntermediateCa, createLeaf, createRootCa } from '@opendps/pki';
import type { RegistrationOutcome } from '@opendps/registration';
import { createDeviceApi } from '../src';
import { ScriptedRegistration, request, startServer, type Reply, type TestServer } from './support';

const SCOPE = '0ne00000A0A';
const SAS = `SharedAccessSignature sr=${SCOPE}/registrations/dev-1&sig=abc%3D&skn=registration&se=1795684788`;
const JSON_HEADERS = { accept: 'application/json', 'content-type': 'application/json; charset=utf-8' };

const assigning: RegistrationOutcome = {
  status: 202,
  retryAfterSeconds: 3,
  body: { operationId: '4.abc.op-1', status: 'assigning', registrationState: { registrationId: 'dev-1', status: 'assigning' } },
};
const assigned: RegistrationOutcome = {
  status: 200,
  body: {
    operationId: '4.abc.op-1',
    status: 'assigned',
    registrationState: { registrationId: 'dev-1', status: 'assigned', assignedHub: 'localhost:8884', deviceId: 'dev-1' },
  },
};

let service: ScriptedRegistration;
let server: TestServer;

beforeAll(async () => {
  service = new ScriptedRegistration();
  server = await startServer([createDeviceApi({ registration: service })]);
});
afterAll(() => server.close());
beforeEach(() => {
  service.calls.length = 0;
});

function put(path: string, body: unknown, headers: Record<string, string> = { authorization: SAS }): Promise<Reply> {
  return request(server, { method: 'PUT', path, headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify(body) });
}

function expectCodedError(reply: Reply, status: number, errorCode: number): void {
  expect(reply.status).toBe(status);
  expect(reply.headers['content-type']).toBe('application/json; charset=utf-8');
  expect(reply.headers['x-ms-error-code']).toBe(String(errorCode));
  const body = reply.json as { errorCode: number; trackingId: string; message: string; timestampUtc: string };
  expect(body.errorCode).toBe(errorCode);
  expect(typeof body.message).toBe('string');
  expect(body.timestampUtc).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$/);
  expect(reply.headers['x-ms-request-id']).toBe(body.trackingId);
}

describe('matches', () => {
  const api = createDeviceApi({ registration: new ScriptedRegistration() });
  it.each([
    `/${SCOPE}/registrations/dev-1/register`,
    `/${SCOPE}/registrations/dev-1/operations/4.abc.op-1`,
    `/${SCOPE}/registrations/dev-1`,
    '/0ne0000abcd/Registrations/dev-1/Register',
    // Not an ID scope spelling, but no service API word either: the service answers 404 for it.
    '/myscope/registrations/dev-1/register',
  ])('claims %s', (path) => expect(api.matches(path)).toBe(true));
  it.each([
    '/registrations/dev-1',
    '/Registrations/dev-1',
    '/registrations/registrations/dev-1',
    '/registrations/registrations/dev-1/register',
    '/registrations/group-1/query',
    '/enrollments/dev-1',
    '/enrollmentGroups/registrations/x',
    '/enrollmentgroups/registrations/x/register',
    `/${SCOPE}/registrations`,
    `/${SCOPE}/registrations/`,
    `/${SCOPE}/registrations//register`,
    `/${SCOPE}/registrations/dev-1/register/extra`,
    `/${SCOPE}/registrations/dev-1/operations`,
    `/${SCOPE}/registrations/dev-1/operations/op/extra`,
    `/${SCOPE}/registrations/dev-1/deregister`,
    `/${SCOPE}/enrollments/dev-1/register`,
    '/$iothub/websocket',
    '/',
    '',
  ])('leaves %s alone', (path) => expect(api.matches(path)).toBe(false));
});

describe('PUT register', () => {
  it('answers 202 with retry-after while assigning and passes the request on normalized', async () => {
    service.onRegister = () => assigning;
    const reply = await put(`/${SCOPE}/registrations/dev-1/register?api-version=2019-03-31`, {
      registrationId: 'dev-1',
      payload: { model: 'm1', n: [1, 2] },
    });
    expect(reply.status).toBe(202);
    expect(reply.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(reply.headers['retry-after']).toBe('3');
    expect(reply.json).toEqual(assigning.body);
    expect(service.calls).toEqual([
      {
        method: 'register',
        request: {
          idScope: SCOPE,
          registrationId: 'dev-1',
          proof: { kind: 'sas', token: SAS },
          payload: { model: 'm1', n: [1, 2] },
          clientAddress: expect.stringMatching(/127\.0\.0\.1$/),
          transport: 'https',
          apiVersion: '2019-03-31',
        },
      },
    ]);
  });

  it('answers 200 without retry-after when final, and accepts forceRegistration and any api-version', async () => {
    service.onRegister = () => assigned;
    const reply = await put(`/${SCOPE}/registrations/dev-1/register?api-version=2021-06-01&forceRegistration=true`, {
      registrationId: 'dev-1',
    });
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(reply.headers['retry-after']).toBeUndefined();
    expect(reply.json).toEqual(assigned.body);
    const call = service.calls[0];
    expect(call?.method === 'register' && call.request).toMatchObject({ apiVersion: '2021-06-01', forceRegistration: true });
    expect(call?.method === 'register' && 'payload' in call.request).toBe(false);
  });

  it('rounds retry-after up to whole seconds and defaults it to 2', async () => {
    service.onRegister = () => ({ ...assigning, retryAfterSeconds: 1.2 });
    expect((await put(`/${SCOPE}/registrations/dev-1/register`, { registrationId: 'dev-1' })).headers['retry-after']).toBe('2');
    service.onRegister = () => ({ status: 202, body: assigning.body });
    expect((await put(`/${SCOPE}/registrations/dev-1/register`, { registrationId: 'dev-1' })).headers['retry-after']).toBe('2');
  });

  it('takes the registration id from the path when the body has none, and decodes path segments', async () => {
    service.onRegister = () => assigned;
    const reply = await put(`/${SCOPE}/registrations/dev%3A1/register`, {});
    expect(reply.status).toBe(200);
    expect(service.calls[0]?.request).toMatchObject({ idScope: SCOPE, registrationId: 'dev:1' });
  });

  it('accepts a body registration id that differs from the path only in case', async () => {
    service.onRegister = () => assigned;
    expect((await put(`/${SCOPE}/registrations/dev-1/register`, { registrationId: 'DEV-1' })).status).toBe(200);
  });
});

describe('proofs', () => {
  const path = `/${SCOPE}/registrations/dev-1/register`;
  beforeEach(() => {
    service.onRegister = () => assigned;
  });

  it('passes no proof when nothing was presented', async () => {
    await put(path, { registrationId: 'dev-1' }, {});
    expect(service.calls[0]?.request.proof).toEqual({ kind: 'none' });
  });

  it('passes TPM keys from the body, without a token on the first PUT and with it on the second', async () => {
    const tpm = { endorsementKey: 'AToAAQAL', storageRootKey: 'ARYAAQAL' };
    await put(path, { registrationId: 'dev-1', tpm }, {});
    await put(path, { registrationId: 'dev-1', tpm }, { authorization: SAS });
    await put(path, { registrationId: 'dev-1', tpm: { endorsementKey: 'AToAAQAL' } }, {});
    expect(service.calls.map((call) => call.request.proof)).toEqual([
      { kind: 'tpm', ...tpm },
      { kind: 'tpm', ...tpm, token: SAS },
      { kind: 'tpm', endorsementKey: 'AToAAQAL' },
    ]);
  });

  it('passes the TLS client certificate chain leaf first, as DER, stopping at the self-signed root', async () => {
    const root = createRootCa({ commonName: 'device root' });
    const intermediate = createIntermediateCa(root, { commonName: 'device intermediate' });
    const device = createLeaf(intermediate, { commonName: 'dev-1' });
    const der = (pem: string): Buffer => new X509Certificate(pem).raw;

    // The device sends its leaf and the intermediate (the usual X.509 group setup).
    await request(server, {
      method: 'PUT',
      path,
      headers: JSON_HEADERS,
      body: '{"registrationId":"dev-1"}',
      cert: device.certificatePem + intermediate.certificatePem,
      key: device.privateKeyPem,
    });
    // The device sends the whole chain, root included.
    await request(server, {
      method: 'PUT',
      path,
      headers: JSON_HEADERS,
      body: '{"registrationId":"dev-1"}',
      cert: device.certificatePem + intermediate.certificatePem + root.certificatePem,
      key: device.privateKeyPem,
    });
    // A self-signed device certificate alone.
    const selfSigned = createLeaf(undefined, { commonName: 'dev-1' });
    await request(server, {
      method: 'PUT',
      path,
      headers: JSON_HEADERS,
      body: '{"registrationId":"dev-1"}',
      cert: selfSigned.certificatePem,
      key: selfSigned.privateKeyPem,
    });
    expect(service.calls.map((call) => call.request.proof)).toEqual([
      { kind: 'x509', chain: [der(device.certificatePem), der(intermediate.certificatePem)] },
      { kind: 'x509', chain: [der(device.certificatePem), der(intermediate.certificatePem), der(root.certificatePem)] },
      { kind: 'x509', chain: [der(selfSigned.certificatePem)] },
    ]);
  });

  it('prefers the Authorization SAS over a client certificate', async () => {
    const device = createLeaf(undefined, { commonName: 'dev-1' });
    await request(server, {
      method: 'PUT',
      path,
      headers: { ...JSON_HEADERS, authorization: SAS },
      body: '{"registrationId":"dev-1"}',
      cert: device.certificatePem,
      key: device.privateKeyPem,
    });
    expect(service.calls[0]?.request.proof).toEqual({ kind: 'sas', token: SAS });
  });
});

describe('GET operation status', () => {
  it('accepts the {} body the Node SDK sends, twice on one keep-alive connection, and answers 202 then 200', async () => {
    const answers = [assigning, assigned];
    service.onOperationStatus = () => answers.shift() ?? assigned;
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: server.ca });
    const sockets = new Set<unknown>();
    agent.on('free', (socket) => sockets.add(socket));
    const path = `/${SCOPE}/registrations/dev-1/operations/4.abc.op-1?api-version=2019-03-31`;
    const poll = (): Promise<Reply> =>
      request(server, { method: 'GET', path, headers: { ...JSON_HEADERS, authorization: SAS }, body: '{}', agent });
    const first = await poll();
    const second = await poll();
    agent.destroy();

    expect(first.status).toBe(202);
    expect(first.headers['retry-after']).toBe('3');
    expect(first.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(first.json).toEqual(assigning.body);
    expect(second.status).toBe(200);
    expect(second.headers['retry-after']).toBeUndefined();
    expect(second.json).toEqual(assigned.body);
    expect(sockets.size).toBe(1);
    expect(service.calls).toEqual([
      {
        method: 'operationStatus',
        request: { idScope: SCOPE, registrationId: 'dev-1', operationId: '4.abc.op-1', proof: { kind: 'sas', token: SAS }, transport: 'https' },
      },
      expect.objectContaining({ method: 'operationStatus' }),
    ]);
  });

  it('ignores whatever the GET body holds', async () => {
    service.onOperationStatus = () => assigned;
    const reply = await request(server, {
      method: 'GET',
      path: `/${SCOPE}/registrations/dev-1/operations/op-2`,
      headers: JSON_HEADERS,
      body: 'not json',
    });
    expect(reply.status).toBe(200);
    expect(service.calls[0]?.request).toMatchObject({ operationId: 'op-2', proof: { kind: 'none' } });
  });
});

describe('POST status lookup', () => {
  it('answers 200 with the registration state', async () => {
    const state = { registrationId: 'dev-1', status: 'assigned' as const, assignedHub: 'hub', deviceId: 'dev-1' };
    service.onRegistrationStatus = () => state;
    const reply = await request(server, {
      method: 'POST',
      path: `/${SCOPE}/registrations/dev-1?api-version=2021-06-01`,
      headers: { ...JSON_HEADERS, authorization: SAS },
      body: '{"registrationId":"dev-1"}',
    });
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(reply.json).toEqual(state);
    expect(service.calls).toEqual([
      {
        method: 'registrationStatus',
        request: { idScope: SCOPE, registrationId: 'dev-1', proof: { kind: 'sas', token: SAS }, transport: 'https' },
      },
    ]);
  });

  it('accepts an empty body', async () => {
    service.onRegistrationStatus = () => ({ registrationId: 'dev-1', status: 'assigned' });
    const reply = await request(server, { method: 'POST', path: `/${SCOPE}/registrations/dev-1`, headers: { authorization: SAS } });
    expect(reply.status).toBe(200);
  });
});

describe('service errors', () => {
  it.each([
    ['invalidSignature', Errors.invalidSignature()],
    ['idScopeNotFound', Errors.idScopeNotFound()],
    ['operationNotFound', Errors.operationNotFound()],
    ['throttled', Errors.throttled(undefined, { retryAfter: '5' })],
    ['hubUnavailable', Errors.hubUnavailable()],
  ])('maps %s to its status, body and headers', async (_name, error) => {
    service.onRegister = () => {
      throw error;
    };
    const reply = await put(`/${SCOPE}/registrations/dev-1/register`, { registrationId: 'dev-1' });
    expectCodedError(reply, error.status, error.errorCode);
    expect(reply.json).toEqual(error.toJSON());
    expect(reply.headers['x-ms-request-id']).toBe(error.trackingId);
  });

  it('maps errors of the operation status and status lookup too', async () => {
    const error = Errors.operationNotFound();
    service.onOperationStatus = () => Promise.reject(error);
    const poll = await request(server, { method: 'GET', path: `/${SCOPE}/registrations/dev-1/operations/x`, body: '{}', headers: JSON_HEADERS });
    expectCodedError(poll, 404, 404204);
    expect(poll.json).toEqual(error.toJSON());

    service.onRegistrationStatus = () => {
      throw Errors.registrationNotFound();
    };
    const lookup = await request(server, { method: 'POST', path: `/${SCOPE}/registrations/dev-1`, body: '{}', headers: JSON_HEADERS });
    expectCodedError(lookup, 404, 404202);
  });

  it('turns an unexpected failure into a coded 500 without leaking its text', async () => {
    service.onRegister = () => {
      throw new TypeError('secret internals');
    };
    const reply = await put(`/${SCOPE}/registrations/dev-1/register`, { registrationId: 'dev-1' });
    expectCodedError(reply, 500, 500001);
    expect(reply.text).not.toContain('secret internals');
  });

  it('passes a DpsError with any status through unchanged', async () => {
    const custom = new DpsError(409, 409005, 'Conflicting registration in progress.');
    service.onRegister = () => {
      throw custom;
    };
    const reply = await put(`/${SCOPE}/registrations/dev-1/register`, { registrationId: 'dev-1' });
    expect(reply.json).toEqual(custom.toJSON());
    expectCodedError(reply, 409, 409005);
  });
});

describe('bad input', () => {
  const path = `/${SCOPE}/registrations/dev-1/register`;
  beforeEach(() => {
    service.onRegister = () => assigned;
  });

  it.each([
    ['malformed JSON', '{"registrationId":', 400, 400001],
    ['a JSON array', '["dev-1"]', 400, 400002],
    ['a JSON string', '"dev-1"', 400, 400002],
    ['a numeric registrationId', '{"registrationId":7}', 400, 400002],
    ['a string tpm', '{"registrationId":"dev-1","tpm":"AToAAQAL"}', 400, 400002],
    ['a numeric endorsement key', '{"registrationId":"dev-1","tpm":{"endorsementKey":1}}', 400, 400002],
    ['a missing endorsement key', '{"registrationId":"dev-1","tpm":{"storageRootKey":"AA=="}}', 400, 400002],
    ['a numeric storage root key', '{"registrationId":"dev-1","tpm":{"endorsementKey":"AA==","storageRootKey":[]}}', 400, 400002],
    ['a body id that does not match the path', '{"registrationId":"dev-2"}', 400, 400009],
  ])('refuses %s with a coded error', async (_name, body, status, errorCode) => {
    const reply = await request(server, { method: 'PUT', path, headers: JSON_HEADERS, body });
    expectCodedError(reply, status, errorCode);
    expect(service.calls).toHaveLength(0);
  });

  it('refuses the status lookup with a mismatched or malformed body too', async () => {
    const lookup = `/${SCOPE}/registrations/dev-1`;
    expectCodedError(await request(server, { method: 'POST', path: lookup, headers: JSON_HEADERS, body: '{"registrationId":"x"}' }), 400, 400009);
    expectCodedError(await request(server, { method: 'POST', path: lookup, headers: JSON_HEADERS, body: '{' }), 400, 400001);
    expect(service.calls).toHaveLength(0);
  });

  it('refuses a body over 96 KiB declared by Content-Length with 413', async () => {
    const body = JSON.stringify({ registrationId: 'dev-1', payload: 'x'.repeat(100 * 1024) });
    const reply = await request(server, { method: 'PUT', path, headers: JSON_HEADERS, body });
    expectCodedError(reply, 413, 413001);
    expect(reply.headers.connection).toBe('close');
    expect(service.calls).toHaveLength(0);
  });

  it('refuses a chunked body that grows over 96 KiB with 413', async () => {
    const chunks = [Buffer.from('{"registrationId":"dev-1","payload":"'), ...Array.from({ length: 25 }, () => Buffer.alloc(4096, 'y')), Buffer.from('"}')];
    const reply = await request(server, { method: 'PUT', path, headers: JSON_HEADERS, chunks });
    expectCodedError(reply, 413, 413001);
    expect(service.calls).toHaveLength(0);
  });

  it('accepts a body just under the limit', async () => {
    const body = JSON.stringify({ registrationId: 'dev-1', payload: 'x'.repeat(96 * 1024 - 64) });
    expect((await request(server, { method: 'PUT', path, headers: JSON_HEADERS, body })).status).toBe(200);
  });

  it('honours a configured body limit', async () => {
    const small = await startServer([createDeviceApi({ registration: service, maxBodyBytes: 64 })]);
    try {
      const reply = await request(small, { method: 'PUT', path, headers: JSON_HEADERS, body: JSON.stringify({ registrationId: 'dev-1', payload: 'z'.repeat(64) }) });
      expectCodedError(reply, 413, 413001);
    } finally {
      await small.close();
    }
  });

  it.each([
    ['DELETE', path, 'PUT'],
    ['GET', path, 'PUT'],
    ['POST', path, 'PUT'],
    ['PUT', `/${SCOPE}/registrations/dev-1/operations/op-1`, 'GET'],
    ['DELETE', `/${SCOPE}/registrations/dev-1/operations/op-1`, 'GET'],
    ['GET', `/${SCOPE}/registrations/dev-1`, 'POST'],
    ['PATCH', `/${SCOPE}/registrations/dev-1`, 'POST'],
  ])('refuses %s %s with 405 and Allow %s', async (method, target, allow) => {
    const reply = await request(server, { method, path: target, headers: JSON_HEADERS, body: '{}' });
    expectCodedError(reply, 405, 405001);
    expect(reply.headers.allow).toBe(allow);
    expect(service.calls).toHaveLength(0);
  });

  it('refuses malformed percent-encoding in the path with a coded 400', async () => {
    const reply = await put(`/${SCOPE}/registrations/dev%E0%A4%A/register`, { registrationId: 'dev-1' });
    expectCodedError(reply, 400, 400013);
  });

  it('survives a client that goes away in the middle of its body', async () => {
    await new Promise<void>((resolve) => {
      const req = https.request({ host: 'localhost', port: server.port, ca: server.ca, method: 'PUT', path, agent: false, headers: { ...JSON_HEADERS, 'content-length': 1000 } });
      req.on('error', () => resolve());
      req.write('{"registrationId":"dev-1",', () => setTimeout(() => req.destroy(), 50));
    });
    expect(service.calls).toHaveLength(0);
  });

  it('keeps serving after every kind of bad input', async () => {
    const reply = await put(`${path}?api-version=2019-03-31`, { registrationId: 'dev-1' });
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual(assigned.body);
  });
});
