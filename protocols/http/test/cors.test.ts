import type { RegistrationOutcome } from '@opendps/registration';
import { Errors } from '@opendps/model';
import { createDeviceApi, type CorsOrigins } from '../src';
import { ScriptedRegistration, request, startServer, type TestServer } from './support';

const PATH = '/0ne00000A0A/registrations/dev-1/register?api-version=2021-06-01';
const SAS = 'SharedAccessSignature sr=0ne00000A0A%2Fregistrations%2Fdev-1&sig=abc%3D&skn=registration&se=1795684788';
const assigning: RegistrationOutcome = {
  status: 202,
  retryAfterSeconds: 3,
  body: { operationId: '4.abc.op-1', status: 'assigning', registrationState: { registrationId: 'dev-1', status: 'assigning' } },
};

const servers: TestServer[] = [];
let service: ScriptedRegistration;

async function serve(corsOrigins?: CorsOrigins): Promise<TestServer> {
  const server = await startServer([createDeviceApi({ registration: service, ...(corsOrigins ? { corsOrigins } : {}) })]);
  servers.push(server);
  return server;
}

beforeEach(() => {
  service = new ScriptedRegistration();
  service.onRegister = () => assigning;
});
afterAll(() => Promise.all(servers.map((server) => server.close())));

function preflight(server: TestServer, origin: string) {
  return request(server, {
    method: 'OPTIONS',
    path: PATH,
    headers: { origin, 'access-control-request-method': 'PUT', 'access-control-request-headers': 'authorization,content-type' },
  });
}

function register(server: TestServer, headers: Record<string, string>) {
  return request(server, {
    method: 'PUT',
    path: PATH,
    headers: { 'content-type': 'application/json', authorization: SAS, ...headers },
    body: JSON.stringify({ registrationId: 'dev-1' }),
  });
}

it('answers a preflight with 204, the methods and the headers a page needs (any origin by default)', async () => {
  const server = await serve();
  const reply = await preflight(server, 'https://page.example');
  expect(reply.status).toBe(204);
  expect(reply.headers['access-control-allow-origin']).toBe('*');
  expect(String(reply.headers['access-control-allow-methods'])).toMatch(/\bPUT\b/);
  expect(String(reply.headers['access-control-allow-methods'])).toMatch(/\bGET\b/);
  const allowHeaders = String(reply.headers['access-control-allow-headers']).toLowerCase();
  expect(allowHeaders).toContain('authorization');
  expect(allowHeaders).toContain('content-type');
  expect(service.calls).toHaveLength(0);
});

it('exposes retry-after and the x-ms headers on answers and on errors', async () => {
  const server = await serve();
  const reply = await register(server, { origin: 'https://page.example' });
  expect(reply.status).toBe(202);
  expect(reply.headers['access-control-allow-origin']).toBe('*');
  const exposed = String(reply.headers['access-control-expose-headers']).toLowerCase();
  expect(exposed).toContain('retry-after');
  expect(exposed).toContain('x-ms-error-code');
  expect(exposed).toContain('x-ms-request-id');
  expect(reply.headers['retry-after']).toBe('3');

  service.onRegister = () => {
    throw Errors.unauthorized();
  };
  const refused = await register(server, { origin: 'https://page.example' });
  expect(refused.status).toBe(401);
  expect(refused.headers['access-control-allow-origin']).toBe('*');
});

it('with an allow-list: echoes a listed origin with Vary, gives others no CORS headers', async () => {
  const server = await serve(['https://app.example']);
  const listed = await preflight(server, 'https://app.example');
  expect(listed.status).toBe(204);
  expect(listed.headers['access-control-allow-origin']).toBe('https://app.example');
  expect(listed.headers.vary).toBe('Origin');
  const other = await preflight(server, 'https://other.example');
  expect(other.status).toBe(204);
  expect(other.headers['access-control-allow-origin']).toBeUndefined();
  expect(other.headers['access-control-allow-methods']).toBeUndefined();
  const answer = await register(server, { origin: 'https://other.example' });
  expect(answer.headers['access-control-allow-origin']).toBeUndefined();
});

it('leaves requests without Origin (the SDKs) as they were, and OPTIONS without a preflight is still 405', async () => {
  const server = await serve();
  const sdk = await register(server, {});
  expect(sdk.status).toBe(202);
  expect(sdk.headers['access-control-allow-origin']).toBeUndefined();
  const options = await request(server, { method: 'OPTIONS', path: PATH });
  expect(options.status).toBe(405);
});
