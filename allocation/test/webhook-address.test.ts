import http from 'node:http';
import https from 'node:https';
import type { LookupAddress } from 'node:dns';
import type { AddressInfo } from 'node:net';
import type { EnrollmentGroup } from '@opendps/model';
import { createRootCa, createServerCertificate } from '@opendps/pki';
import { HttpsWebhookClient, allocate, type AllocationInput, type WebhookLookup } from '../src';
import { hub, instance } from './helpers';

/**
 * The address check at call time: a webhook URL names a host, and what that name resolves to when
 * the call is made is what gets dialled. A real listener on loopback, and a resolver the test
 * controls, stand in for a DNS answer that changes between the enrollment write and the call.
 */

const ca = createRootCa({ commonName: 'webhook address test CA' });
const certificate = createServerCertificate(ca, ['hooks.test', 'localhost']);
const a = hub('hub-a');

let server: https.Server;
let plain: http.Server;
let port: number;
let plainPort: number;
let calls = 0;
/** What the test resolver answers for every name. */
let resolved: LookupAddress[] = [];
const lookups: string[] = [];

const lookup: WebhookLookup = (hostname, _options, callback) => {
  lookups.push(hostname);
  setImmediate(() => callback(null, resolved));
};

function answer(request: http.IncomingMessage, response: http.ServerResponse): void {
  request.resume();
  request.on('end', () => {
    calls++;
    // Connection: close, so every call opens a new socket and resolves the name again.
    response.writeHead(200, { 'content-type': 'application/json', connection: 'close' }).end(JSON.stringify({ iotHubHostName: a.hostName }));
  });
}

beforeAll(async () => {
  server = https.createServer({ key: certificate.privateKeyPem, cert: certificate.certificatePem }, answer);
  plain = http.createServer(answer);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  plainPort = (plain.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  plain.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await new Promise((resolve) => plain.close(resolve));
});

const clients: HttpsWebhookClient[] = [];
function client(options: ConstructorParameters<typeof HttpsWebhookClient>[0] = {}): HttpsWebhookClient {
  const created = new HttpsWebhookClient({ ca: ca.certificatePem, backoffMs: () => 1, timeoutMs: 5000, lookup, ...options });
  clients.push(created);
  return created;
}

beforeEach(() => {
  calls = 0;
  lookups.length = 0;
});
afterEach(() => {
  for (const created of clients.splice(0)) created.close();
});

function input(webhookUrl: string, webhook: HttpsWebhookClient): AllocationInput {
  const enrollment: EnrollmentGroup = {
    enrollmentGroupId: 'g',
    attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: 'k', secondaryKey: 'k' } },
    allocationPolicy: 'custom',
    customAllocationDefinition: { webhookUrl, apiVersion: '2021-10-01' },
  };
  return { instance: instance([a]), enrollment, registrationId: 'dev-1', attestation: { type: 'symmetricKey' }, webhook };
}

const v4 = (address: string): LookupAddress => ({ address, family: 4 });
const v6 = (address: string): LookupAddress => ({ address, family: 6 });
const failure = (promise: Promise<unknown>) => promise.then(() => undefined, (error: unknown) => error);

describe('webhook address checked when the call is made', () => {
  it('calls a name that resolves to loopback, then refuses it once it resolves to the metadata address, without retrying', async () => {
    const webhook = client();
    resolved = [v4('127.0.0.1')];
    expect((await allocate(input(`https://hooks.test:${port}/alloc`, webhook))).hub).toBe(a);
    expect(calls).toBe(1);

    resolved = [v4('169.254.169.254')];
    const error = await failure(allocate(input(`https://hooks.test:${port}/alloc`, webhook)));
    expect(error).toMatchObject({ errorCode: 502201, info: { reason: 'EWEBHOOKADDRESS', attempts: '1' } });
    expect((error as Error).message).toMatch(/169\.254\.169\.254 \(a link-local address\)/);
    expect(calls).toBe(1);
    expect(lookups).toEqual(['hooks.test', 'hooks.test']);
  });

  it.each([
    ['IPv6 link-local', [v6('fe80::1')]],
    ['the AWS IPv6 metadata address', [v6('fd00:ec2::254')]],
    ['the Alibaba metadata address', [v4('100.100.100.200')]],
    ['one bad address among good ones', [v4('127.0.0.1'), v4('169.254.10.1')]],
    ['a mapped link-local address', [v6('::ffff:169.254.169.254')]],
  ])('refuses a name resolving to %s', async (_name, addresses) => {
    resolved = addresses;
    const error = await failure(allocate(input(`https://hooks.test:${port}/alloc`, client())));
    expect(error).toMatchObject({ errorCode: 502201, info: { reason: 'EWEBHOOKADDRESS' } });
    expect(calls).toBe(0);
  });

  it('calls an http:// webhook only while its name resolves to loopback, and only when http is allowed', async () => {
    resolved = [v4('127.0.0.1')];
    const url = `http://localhost:${plainPort}/alloc`;
    expect(await failure(allocate(input(url, client())))).toMatchObject({ errorCode: 400012 });
    const webhook = client({ allowHttp: true });
    expect((await allocate(input(url, webhook))).hub).toBe(a);
    expect(calls).toBe(1);

    resolved = [v4('10.1.2.3')];
    const error = await failure(allocate(input(url, webhook)));
    expect(error).toMatchObject({ errorCode: 502201, info: { reason: 'EWEBHOOKADDRESS' } });
    expect((error as Error).message).toMatch(/10\.1\.2\.3 \(not a loopback address\)/);
    expect(calls).toBe(1);
  });

  it('dials a link-local answer when the operator allows link-local webhooks', async () => {
    // The loopback listener stands in for the link-local host: the answer it would be refused for
    // is let through, so only the allowance decides.
    resolved = [v4('127.0.0.1'), v4('169.254.0.9')];
    const error = await failure(allocate(input(`https://hooks.test:${port}/alloc`, client())));
    expect(error).toMatchObject({ info: { reason: 'EWEBHOOKADDRESS' } });
    expect((await allocate(input(`https://hooks.test:${port}/alloc`, client({ allowLinkLocal: true })))).hub).toBe(a);
    expect(calls).toBe(1);
  });
});
