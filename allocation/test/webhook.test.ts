import http from 'node:http';
import https from 'node:https';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { EnrollmentGroup, IndividualEnrollment } from '@opendps/model';
import { createRootCa, createServerCertificate } from '@opendps/pki';
import {
  HttpsWebhookClient,
  allocate,
  buildAllocationRequest,
  checkWebhookUrl,
  parseAllocationResponse,
  type AllocationInput,
  type WebhookAllocationRequest,
} from '../src';
import { codeOf, hub, instance } from './helpers';

/** What the test webhook answers: a status and a raw body, or silence. */
type Answer = { status: number; body: string } | 'silence';

const ca = createRootCa({ commonName: 'allocation test CA' });
const serverCertificate = createServerCertificate(ca, ['localhost', '127.0.0.1']);

const a = hub('hub-a');
const b = hub('hub-b', 3);
const spare = hub('hub-spare', 1, { applyAllocationPolicy: false });
const linked = instance([a, b, spare]);

let server: https.Server;
let baseUrl: string;
let answers: Answer[] = [];
let received: Array<{ url: string; contentType: string | undefined; body: string }> = [];
let failedHandshakes = 0;

function answer(...next: Answer[]): void {
  answers = next;
}

function json(status: number, body: unknown): Answer {
  return { status, body: JSON.stringify(body) };
}

beforeAll(async () => {
  server = https.createServer({ key: serverCertificate.privateKeyPem, cert: serverCertificate.certificatePem }, (request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push({ url: request.url ?? '', contentType: request.headers['content-type'], body: Buffer.concat(chunks).toString('utf8') });
      // the last answer repeats, so "always 500" is one entry
      const next = answers.length > 1 ? answers.shift() : answers[0];
      if (!next || next === 'silence') return;
      response.writeHead(next.status, { 'content-type': 'application/json' }).end(next.body);
    });
  });
  server.on('tlsClientError', () => failedHandshakes++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `https://localhost:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const clients: HttpsWebhookClient[] = [];
function client(options: ConstructorParameters<typeof HttpsWebhookClient>[0] = {}): HttpsWebhookClient {
  const created = new HttpsWebhookClient({ ca: ca.certificatePem, backoffMs: () => 20, ...options });
  clients.push(created);
  return created;
}

beforeEach(() => {
  received = [];
  answers = [];
  failedHandshakes = 0;
});

afterEach(() => {
  for (const created of clients.splice(0)) created.close();
  server.closeAllConnections();
});

const GROUP_KEY = Buffer.alloc(64, 9).toString('base64');
function customGroup(path = '/api/allocate?code=fn-secret-key'): EnrollmentGroup {
  return {
    enrollmentGroupId: 'contoso-custom',
    attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: GROUP_KEY, secondaryKey: GROUP_KEY } },
    allocationPolicy: 'custom',
    customAllocationDefinition: { webhookUrl: `${baseUrl}${path}`, apiVersion: '2021-10-01' },
    initialTwin: { tags: { from: 'enrollment' } },
  };
}

function customInput(extra: Partial<AllocationInput> = {}): AllocationInput {
  return {
    instance: linked,
    enrollment: customGroup(),
    registrationId: 'breakroom499',
    attestation: { type: 'symmetricKey' },
    webhook: client(),
    ...extra,
  };
}

describe('custom allocation over a real HTTPS webhook', () => {
  it('posts the AllocationRequest and takes the hub, initialTwin and payload of the answer', async () => {
    const devicePayload = { modelId: 'thermostat-2', firmware: [1, 2, 3] };
    answer(
      json(200, {
        IotHubHostname: 'HUB-B.hubs.example:8884', // any case (doc table vs JSON examples)
        initialTwin: { tags: { from: 'webhook' }, properties: { desired: { interval: 30 } } },
        payload: { echoed: devicePayload, region: 'west' },
      }),
    );
    const result = await allocate(
      customInput({ payload: devicePayload, current: { hubHostName: a.hostName, deviceId: 'breakroom499' } }),
    );
    expect(result).toEqual({
      policy: 'custom',
      hub: b,
      initialTwin: { tags: { from: 'webhook' }, properties: { desired: { interval: 30 } } },
      payload: { echoed: devicePayload, region: 'west' },
      // the function key (`?code=`) stays out of what the trace records
      why: { rule: 'webhook', webhookUrl: `${baseUrl}/api/allocate`, iotHubHostName: b.hostName },
    });

    expect(received).toHaveLength(1);
    const [call] = received;
    expect(call?.url).toBe('/api/allocate?code=fn-secret-key');
    expect(call?.contentType).toMatch(/^application\/json/);
    const body = JSON.parse(call?.body ?? '') as WebhookAllocationRequest;
    expect(body.individualEnrollment).toBeUndefined();
    expect(body.enrollmentGroup).toMatchObject({ enrollmentGroupId: 'contoso-custom', attestation: { type: 'symmetricKey' } });
    expect(body.deviceRuntimeContext).toEqual({
      registrationId: 'breakroom499',
      currentIotHubHostName: a.hostName,
      currentDeviceId: 'breakroom499',
      symmetricKey: {},
      payload: devicePayload,
    });
    // candidates only (hub-spare does not apply the policy), as host names
    expect(body.linkedHubs).toEqual([a.hostName, b.hostName]);
    // the group's keys never leave the service
    expect(call?.body).not.toContain(GROUP_KEY);
  });

  it('offers an individual enrollment and the enrollment-named hubs; a first registration has no current hub', async () => {
    answer(json(200, { iotHubHostName: 'hub-spare' }));
    const enrollment: IndividualEnrollment = {
      registrationId: 'dev-9',
      attestation: { type: 'x509', x509: { clientCertificates: { primary: { certificate: '-----BEGIN CERTIFICATE-----x', info: undefined } } } },
      iotHubs: ['hub-spare', 'hub-a'],
      allocationPolicy: 'custom',
      customAllocationDefinition: { webhookUrl: `${baseUrl}/alloc`, apiVersion: '2021-10-01' },
    };
    const result = await allocate(customInput({ enrollment, registrationId: 'dev-9' }));
    expect(result).toEqual({ policy: 'custom', hub: spare, why: { rule: 'webhook', webhookUrl: `${baseUrl}/alloc`, iotHubHostName: spare.hostName } });
    const body = JSON.parse(received[0]?.body ?? '') as WebhookAllocationRequest;
    expect(body.individualEnrollment?.registrationId).toBe('dev-9');
    expect(body.linkedHubs).toEqual([a.hostName, spare.hostName]);
    expect(body.deviceRuntimeContext).toEqual({ registrationId: 'dev-9', symmetricKey: {} });
    expect(received[0]?.body).not.toContain('BEGIN CERTIFICATE');
  });

  it('retries a 500 and succeeds when a later attempt answers', async () => {
    answer({ status: 500, body: 'busy' }, { status: 503, body: '' }, json(200, { iotHubHostName: a.hostName }));
    expect((await allocate(customInput())).hub).toBe(a);
    expect(received).toHaveLength(3);
  });

  it('fails with 502201 after 3 attempts of 500', async () => {
    answer({ status: 500, body: 'down' });
    const error = await allocate(customInput()).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ errorCode: 502201, status: 502, info: { status: '500', attempts: '3' } });
    expect(received).toHaveLength(3);
    // the function key in the query never reaches an error message (it goes into registrationState)
    expect((error as Error).message).not.toContain('fn-secret-key');
  });

  it('does not retry a 4xx', async () => {
    answer({ status: 401, body: '{"error":"bad key"}' });
    expect(await codeOf(() => allocate(customInput()))).toBe(502201);
    expect(received).toHaveLength(1);
  });

  it('times out each attempt and fails with 504201', async () => {
    answer('silence');
    const started = Date.now();
    const code = await codeOf(() => allocate(customInput({ webhook: client({ timeoutMs: 150, attempts: 2, backoffMs: () => 0 }) })));
    expect(code).toBe(504201);
    expect(received).toHaveLength(2);
    // Timers never fire early: two attempts took at least their two timeouts.
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
  });

  it('retries an unreachable webhook and fails with 502201', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const enrollment = { ...customGroup(), customAllocationDefinition: { webhookUrl: `https://127.0.0.1:${port}/x`, apiVersion: '2021-10-01' } };
    const error = await allocate(customInput({ enrollment })).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ errorCode: 502201, info: { reason: 'ECONNREFUSED', attempts: '3' } });
  });

  it('refuses an untrusted webhook certificate without the extra CA, and does not retry', async () => {
    answer(json(200, { iotHubHostName: a.hostName }));
    const untrusting = new HttpsWebhookClient({ backoffMs: () => 20 });
    clients.push(untrusting);
    const error = await allocate(customInput({ webhook: untrusting })).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ errorCode: 502201, info: { attempts: '1', reason: expect.stringMatching(/CERT|SELF_SIGNED|UNABLE_TO/) } });
    expect(received).toHaveLength(0);
    // The server learns of the refused handshake after the client gave up: wait for that event.
    if (failedHandshakes === 0) await once(server, 'tlsClientError');
    expect(failedHandshakes).toBe(1);
  });

  it.each([
    ['not JSON', { status: 200, body: '<html>ok</html>' }, 502202],
    ['a JSON array', json(200, [a.hostName]), 502202],
    ['tags that are not an object', json(200, { iotHubHostName: a.hostName, initialTwin: { tags: 'x' } }), 502202],
    ['desired that is not an object', json(200, { iotHubHostName: a.hostName, initialTwin: { properties: { desired: [1] } } }), 502202],
    ['a hub name that is not a string', json(200, { iotHubHostName: 42 }), 502202],
    ['no hub', json(200, { payload: { a: 1 } }), 400208],
    ['an unknown hub', json(200, { iotHubHostName: 'elsewhere.azure-devices.net' }), 400208],
    ['a linked hub that was not offered', json(200, { iotHubHostName: spare.hostName }), 400208],
  ])('answers %s with a coded error', async (_name, reply, expected) => {
    answer(reply as Answer);
    expect(await codeOf(() => allocate(customInput()))).toBe(expected);
    expect(received).toHaveLength(1);
  });

  it('refuses an oversized answer with 502202', async () => {
    answer(json(200, { iotHubHostName: a.hostName, payload: 'x'.repeat(4096) }));
    expect(await codeOf(() => allocate(customInput({ webhook: client({ maxResponseBytes: 1024 }) })))).toBe(502202);
  });
});

describe('webhook URL rule', () => {
  const httpAllowed = { allowHttp: true };
  it('accepts https anywhere and, when allowed, http to loopback only', () => {
    expect(checkWebhookUrl('https://func.azurewebsites.net/api/x?code=k').hostname).toBe('func.azurewebsites.net');
    expect(checkWebhookUrl('http://localhost:7071/api/x', httpAllowed).hostname).toBe('localhost');
    expect(checkWebhookUrl('http://127.0.0.5/x', httpAllowed).hostname).toBe('127.0.0.5');
    expect(checkWebhookUrl('http://[::1]:80/x', httpAllowed).hostname).toBe('[::1]');
    expect(checkWebhookUrl('http://[::ffff:127.0.0.1]/x', httpAllowed).hostname).toBe('[::ffff:7f00:1]');
  });

  it.each(['http://localhost:7071/api/x', 'http://127.0.0.1/x'])('refuses %s with 400012 unless http is allowed', async (url) => {
    expect(await codeOf(() => checkWebhookUrl(url))).toBe(400012);
    const enrollment = { ...customGroup(), customAllocationDefinition: { webhookUrl: url, apiVersion: '2021-10-01' } };
    expect(await codeOf(() => allocate(customInput({ enrollment })))).toBe(400012);
  });

  it.each([
    'https://169.254.169.254/latest/meta-data/', 'https://[fe80::1]/x', 'https://[fd00:ec2::254]/x', 'https://100.100.100.200/x',
    'https://metadata.google.internal/computeMetadata/v1/', 'https://[::ffff:169.254.169.254]/x', 'https://[::ffff:a9fe:a9fe]/x',
  ])('refuses the link-local or metadata host %s with 400012 unless allowed', async (url) => {
    expect(await codeOf(() => checkWebhookUrl(url, httpAllowed))).toBe(400012);
    expect(checkWebhookUrl(url, { allowLinkLocal: true }).protocol).toBe('https:');
    const enrollment = { ...customGroup(), customAllocationDefinition: { webhookUrl: url, apiVersion: '2021-10-01' } };
    expect(await codeOf(() => allocate(customInput({ enrollment })))).toBe(400012);
  });

  it.each(['http://example.com/x', 'http://10.0.0.1/x', 'http://128.0.0.1/x', 'http://[2001:db8::1]/x', 'http://[::ffff:10.0.0.1]/x', 'http://127.0.0.1.example.com/x', 'ftp://localhost/x', 'not a url'])(
    'refuses %s with 400012 before connecting',
    async (url) => {
      expect(await codeOf(() => checkWebhookUrl(url, httpAllowed))).toBe(400012);
      const enrollment = { ...customGroup(), customAllocationDefinition: { webhookUrl: url, apiVersion: '2021-10-01' } };
      expect(await codeOf(() => allocate(customInput({ enrollment, webhook: client(httpAllowed) })))).toBe(400012);
      expect(received).toHaveLength(0);
    },
  );

  it('calls a plain-http webhook on loopback', async () => {
    const plain = http.createServer((request, response) => {
      request.resume();
      request.on('end', () => response.writeHead(200).end(JSON.stringify({ iotHubHostName: 'hub-a' })));
    });
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(plain.address() as AddressInfo).port}/alloc`;
      const enrollment = { ...customGroup(), customAllocationDefinition: { webhookUrl: url, apiVersion: '2021-10-01' } };
      expect((await allocate(customInput({ enrollment, webhook: client({ allowHttp: true }) }))).hub).toBe(a);
    } finally {
      for (const created of clients.splice(0)) created.close();
      plain.closeAllConnections();
      await new Promise((resolve) => plain.close(resolve));
    }
  });
});

describe('AllocationRequest and AllocationResponse shapes', () => {
  it('carries x509 certificate info or TPM keys as the device runtime context', () => {
    const info = {
      subjectName: 'CN=dev', sha1Thumbprint: 'AA', sha256Thumbprint: 'BB', issuerName: 'CN=ca',
      notBeforeUtc: '2026-01-01T00:00:00Z', notAfterUtc: '2027-01-01T00:00:00Z', serialNumber: '01', version: 3,
    };
    const enrollment = customGroup();
    const x509 = buildAllocationRequest({ enrollment, registrationId: 'd', candidates: [a], attestation: { type: 'x509', x509: { certificateInfo: info, enrollmentGroupId: 'g' } } });
    expect(x509.deviceRuntimeContext).toEqual({ registrationId: 'd', x509: { certificateInfo: info, enrollmentGroupId: 'g' } });
    const tpm = buildAllocationRequest({ enrollment, registrationId: 'd', candidates: [a], attestation: { type: 'tpm', tpm: { endorsementKey: 'AToAAQ' } }, payload: 0 });
    expect(tpm.deviceRuntimeContext).toEqual({ registrationId: 'd', tpm: { endorsementKey: 'AToAAQ' }, payload: 0 });
  });

  it('keeps payloads of any JSON type and drops null', () => {
    expect(parseAllocationResponse({ iotHubHostName: 'hub-a', payload: 'text' }, [a]).payload).toBe('text');
    expect(parseAllocationResponse({ iotHubHostName: 'hub-a', payload: null, initialTwin: null }, [a])).toEqual({ hub: a });
  });
});
