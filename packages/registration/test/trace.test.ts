import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { ConfiguredLatencySource, HttpsWebhookClient } from '@opendps/allocation';
import { createSasToken } from '@opendps/attestation';
import { BuiltInHub } from '@opendps/hub';
import { certificateInfo, generateSymmetricKey, isDpsError, parseCertificate, type Logger, type ProvisioningInstance } from '@opendps/model';
import { createLeaf, createRootCa } from '@opendps/pki';
import {
  DpsRegistrationService,
  registrationTraces,
  type HubDirectory,
  type Proof,
  type RegistrationServiceOptions,
  type RegistrationTrace,
} from '@opendps/registration';
import { SqliteStore, caCertificates, enrollmentGroups, enrollments } from '@opendps/store';

/**
 * Every outcome leaves one trace (the info log line and the stored copy): a refusal says which check
 * failed while the device sees the same DPS error; an assignment says the policy, the candidates,
 * the chosen hub and why, and the reprovisioning decision.
 */
const idScope = '0ne0000A11C';
const hubA = { name: 'hub-a', hostName: 'hub-a.local', allocationWeight: 1, applyAllocationPolicy: true };
const hubB = { name: 'hub-b', hostName: 'hub-b.local', allocationWeight: 3, applyAllocationPolicy: true };
const instance: ProvisioningInstance = {
  name: 'tenant-1',
  idScope,
  serviceHostName: 'localhost',
  policies: [],
  linkedHubs: [hubA, hubB],
  allocationPolicy: 'hashed',
  quotas: { registrationsPerSecond: 1000 },
};

let dir: string;
let store: SqliteStore;
const builtIn = new Map<string, BuiltInHub>();
let webhookServer: Server;
let webhookUrl = '';
/** What the webhook answers next: a status and a body. */
let webhookAnswer: { status: number; body: unknown } = { status: 200, body: {} };
const lines: Array<{ level: string; fields: Record<string, unknown>; message?: string }> = [];
const now = Date.now();

const capture = (level: string): Logger['info'] => (fields, message) => lines.push({ level, fields: fields as Record<string, unknown>, ...(message ? { message } : {}) });
const logger: Logger = { info: capture('info'), warn: capture('warn'), error: capture('error'), debug: capture('debug'), child: () => logger };

const hubs: HubDirectory = {
  connector: (hub) => {
    const found = builtIn.get(hub.name);
    if (!found) throw new Error(`no hub ${hub.name}`);
    return found;
  },
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'opendps-trace-'));
  store = new SqliteStore(join(dir, 'store.db'));
  // Never started: the service only uses their registries (the store) and host names.
  for (const hub of [hubA, hubB]) {
    const running = new BuiltInHub({ name: hub.name, host: hub.hostName, port: 443, tls: { cert: '', key: '' }, store });
    builtIn.set(hub.name, running);
    hub.hostName = running.hostName;
  }
  webhookServer = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(webhookAnswer.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(webhookAnswer.body));
    });
  });
  await new Promise<void>((resolve) => webhookServer.listen(0, '127.0.0.1', resolve));
  webhookUrl = `http://127.0.0.1:${(webhookServer.address() as AddressInfo).port}/allocate?code=secret`;
});

afterAll(async () => {
  await new Promise((resolve) => webhookServer.close(resolve));
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  lines.length = 0;
});

const service = (options: Partial<RegistrationServiceOptions> = {}) =>
  new DpsRegistrationService({
    store,
    instances: () => [instance],
    hubs,
    logger,
    now: () => now,
    answerWithinMs: 5000,
    latency: new ConfiguredLatencySource({ networks: { '10.1.0.0/16': 'westeurope' }, table: { westeurope: { 'hub-a': 40, 'hub-b': 5 } } }),
    webhook: new HttpsWebhookClient({ attempts: 1, timeoutMs: 5000, allowHttp: true }),
    ...options,
  });

const sas = (registrationId: string, key: string, expiry = Math.floor(now / 1000) + 3600): Proof => ({
  kind: 'sas',
  token: createSasToken({ resource: `${idScope}/registrations/${registrationId}`, key, keyName: 'registration', expiry }),
});

async function enroll(registrationId: string, extra: Record<string, unknown> = {}): Promise<string> {
  const key = generateSymmetricKey();
  await enrollments(store, idScope).put({
    registrationId,
    attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: generateSymmetricKey() } },
    ...extra,
  });
  return key;
}

/**
 * The device's answer (status or errorCode), its outcome line (the info lines, plus an assignment's
 * debug line: assignments are not logged at info), and the stored trace.
 */
async function register(registrationId: string, proof: Proof, options: Partial<RegistrationServiceOptions> = {}, clientAddress?: string) {
  lines.length = 0;
  let answer: { status?: string; errorCode?: number; message?: string };
  try {
    const outcome = await service(options).register({ idScope, registrationId, proof, transport: 'mqtt', ...(clientAddress ? { clientAddress } : {}) });
    answer = { status: outcome.body.status };
  } catch (error) {
    if (!isDpsError(error)) throw error;
    answer = { errorCode: error.errorCode, message: error.message };
  }
  const info = lines.filter((line) => line.level === 'info' || (line.level === 'debug' && line.message === 'registration assigned'));
  const stored = (await registrationTraces(store, idScope).get(registrationId.toLowerCase()))?.value;
  return { answer, info, stored };
}

function onlyTrace(info: Array<{ level: string; fields: Record<string, unknown>; message?: string }>): Record<string, unknown> {
  expect(info).toHaveLength(1);
  const line = info[0]!;
  // An assignment is a debug line (nothing per healthy registration at info); every other outcome is info.
  expect({ outcome: line.fields.outcome, level: line.level }).toEqual({ outcome: line.fields.outcome, level: line.fields.outcome === 'assigned' ? 'debug' : 'info' });
  return line.fields;
}

describe('refusals: which check failed, never told to the device', () => {
  test('an unknown registration id and a wrong key get the same 401002, with different reasons', async () => {
    await enroll('known-1');
    const unknown = await register('nobody-1', sas('nobody-1', generateSymmetricKey()));
    const wrong = await register('known-1', sas('known-1', generateSymmetricKey()));
    expect(unknown.answer.errorCode).toBe(401002);
    expect(wrong.answer).toEqual(unknown.answer);
    expect(onlyTrace(unknown.info)).toMatchObject({ outcome: 'refused', reason: 'unknownEnrollment', errorCode: 401002, instance: 'tenant-1', transport: 'mqtt' });
    expect(onlyTrace(wrong.info)).toMatchObject({ outcome: 'refused', reason: 'wrongKey', errorCode: 401002 });
    expect(unknown.stored).toMatchObject({ outcome: 'refused', reason: 'unknownEnrollment', registrationId: 'nobody-1' });
    expect(wrong.stored).toMatchObject({ outcome: 'refused', reason: 'wrongKey', attestation: { mechanism: 'symmetricKey' } });
    expect(JSON.stringify(wrong.answer)).not.toMatch(/wrongKey|unknownEnrollment/);
  });

  test('a disabled enrollment is answered `disabled` and traced as such', async () => {
    const key = await enroll('off-1', { provisioningStatus: 'disabled' });
    const { answer, info, stored } = await register('off-1', sas('off-1', key));
    expect(answer.status).toBe('disabled');
    expect(onlyTrace(info)).toMatchObject({ outcome: 'disabled', reason: 'enrollmentDisabled' });
    expect(stored?.outcome).toBe('disabled');
  });

  test('an expired token', async () => {
    const key = await enroll('late-1');
    const { answer, info } = await register('late-1', sas('late-1', key, Math.floor(now / 1000) - 3600));
    expect(answer.errorCode).toBe(401003);
    expect(onlyTrace(info)).toMatchObject({ reason: 'tokenExpired' });
  });

  test('X.509: an expired certificate and a chain that does not verify', async () => {
    const root = createRootCa({ commonName: 'trace root' });
    const other = createRootCa({ commonName: 'trace other root' });
    const der = (pem: string) => new X509Certificate(pem).raw;
    const expired = createLeaf(root, { commonName: 'x509-old', notBefore: new Date(now - 10 * 86400_000), notAfter: new Date(now - 86400_000) });
    const fresh = createLeaf(root, { commonName: 'x509-bad' });
    const old = await register('x509-old', { kind: 'x509', chain: [der(expired.certificatePem), der(root.certificatePem)] });
    const bad = await register('x509-bad', { kind: 'x509', chain: [der(fresh.certificatePem), der(other.certificatePem)] });
    const unknown = await register('x509-bad', { kind: 'x509', chain: [der(fresh.certificatePem), der(root.certificatePem)] });
    // A group that trusts a CA certificate whose proof of possession is still pending.
    const pending = createRootCa({ commonName: 'trace pending root' });
    await caCertificates(store, idScope).put({
      name: 'trace-pending-ca',
      certificate: pending.certificatePem,
      info: certificateInfo(parseCertificate(pending.certificatePem)),
      isVerified: false,
    });
    await enrollmentGroups(store, idScope).put({ enrollmentGroupId: 'trace-pending', attestation: { type: 'x509', x509: { caReferences: { primary: 'trace-pending-ca' } } } });
    const leaf = createLeaf(pending, { commonName: 'x509-pending' });
    const unverified = await register('x509-pending', { kind: 'x509', chain: [der(leaf.certificatePem), der(pending.certificatePem)] });
    for (const { answer } of [old, bad, unknown, unverified]) expect(answer.errorCode).toBe(401002);
    expect(onlyTrace(unverified.info)).toMatchObject({ reason: 'unverifiedCa' });
    expect(onlyTrace(old.info)).toMatchObject({ reason: 'certificateExpired', attestation: { mechanism: 'x509' } });
    expect(onlyTrace(bad.info)).toMatchObject({ reason: 'untrustedChain' });
    expect(onlyTrace(unknown.info)).toMatchObject({ reason: 'unknownEnrollment' });
  });

  test('TPM: a token that answers no pending challenge', async () => {
    const ek = Buffer.from(readFileSync(join(__dirname, '../../../attestation/test/tpm/fixtures/ek.tpm2b.hex'), 'utf8').trim(), 'hex').toString('base64');
    await enrollments(store, idScope).put({ registrationId: 'tpm-1', attestation: { type: 'tpm', tpm: { endorsementKey: ek } } });
    const token = createSasToken({ resource: `${idScope}/registrations/tpm-1`, key: generateSymmetricKey(), keyName: 'registration', expiry: Math.floor(now / 1000) + 3600 });
    const { answer, info, stored } = await register('tpm-1', { kind: 'tpm', endorsementKey: ek, storageRootKey: ek, token });
    expect(answer.errorCode).toBe(401000);
    expect(onlyTrace(info)).toMatchObject({ reason: 'tpmChallengeFailed', attestation: { mechanism: 'tpm' } });
    expect(stored?.reason).toBe('tpmChallengeFailed');
  });

  test('TPM over AMQP SASL: a challenge asked for an endorsement key no enrollment holds', async () => {
    lines.length = 0;
    const ek = Buffer.from(readFileSync(join(__dirname, '../../../attestation/test/tpm/fixtures/ek.tpm2b.hex'), 'utf8').trim(), 'hex');
    await expect(service().tpm.challenge({ idScope, registrationId: 'tpm-nobody', endorsementKey: ek, storageRootKey: ek })).rejects.toMatchObject({ errorCode: 401000 });
    expect(onlyTrace(lines.filter((line) => line.level === 'info'))).toMatchObject({ outcome: 'refused', reason: 'unknownEnrollment', transport: 'amqp' });
  });

  test('throttled: counted and logged, not stored', async () => {
    const key = await enroll('busy-1');
    const throttled = { ...instance, quotas: { registrationsPerSecond: 1 } };
    const options = { instances: () => [throttled] };
    await register('busy-1', sas('busy-1', key), options);
    const { answer, info, stored } = await register('busy-1', sas('busy-1', key), options);
    expect(answer.errorCode).toBe(429001);
    expect(onlyTrace(info)).toMatchObject({ outcome: 'refused', reason: 'throttled' });
    expect(stored?.reason).not.toBe('throttled');
  });

  test('no hub: the enrollment names a hub that is not linked', async () => {
    const key = await enroll('lost-1', { iotHubs: ['nowhere.local'] });
    const { answer, info, stored } = await register('lost-1', sas('lost-1', key));
    expect(answer.status).toBe('failed');
    expect(onlyTrace(info)).toMatchObject({ outcome: 'failed', reason: 'noHub', errorCode: 400208 });
    expect(stored?.reason).toBe('noHub');
  });

  test('webhook failure', async () => {
    webhookAnswer = { status: 500, body: { error: 'down' } };
    const key = await enroll('hook-down', { allocationPolicy: 'custom', customAllocationDefinition: { webhookUrl, apiVersion: '2019-03-31' } });
    const { answer, info } = await register('hook-down', sas('hook-down', key));
    expect(answer.status).toBe('failed');
    expect(onlyTrace(info)).toMatchObject({ outcome: 'failed', reason: 'webhookFailed' });
  });
});

describe('assignments: the policy, the candidates, the chosen hub and why', () => {
  const assignment = (trace: Record<string, unknown> | RegistrationTrace | undefined) => (trace as RegistrationTrace).assignment;

  test('hashed, with the hub weights; a second registration keeps its hub', async () => {
    const key = await enroll('hash-1');
    const first = await register('hash-1', sas('hash-1', key));
    expect(first.answer.status).toBe('assigned');
    const trace = onlyTrace(first.info);
    expect(trace).toMatchObject({ outcome: 'assigned', attestation: { mechanism: 'symmetricKey', enrollment: { kind: 'individual', registrationId: 'hash-1' } } });
    expect(assignment(trace)).toMatchObject({
      policy: 'hashed',
      candidates: [
        { name: 'hub-a', allocationWeight: 1 },
        { name: 'hub-b', allocationWeight: 3 },
      ],
      why: { rule: 'hashed', weights: { 'hub-a': 1, 'hub-b': 3 } },
      reprovision: { action: 'initial', substatus: 'initialAssignment' },
    });
    expect(trace.assignedHub).toMatch(/^hub-b\.local/);
    expect(assignment(trace)?.chosen.name).toBe('hub-b');
    const again = await register('hash-1', sas('hash-1', key));
    expect(assignment(onlyTrace(again.info))?.reprovision).toMatchObject({ action: 'keep' });
    expect(assignment(again.stored)?.reprovision.action).toBe('keep');

    // A refused poll is logged, not stored; a refused register keeps the assignment it replaces.
    await expect(
      service().operationStatus({ idScope, registrationId: 'hash-1', operationId: 'no-such-operation', proof: sas('hash-1', key), transport: 'https' }),
    ).rejects.toMatchObject({ errorCode: 404204 });
    expect((await registrationTraces(store, idScope).get('hash-1'))?.value.outcome).toBe('assigned');
    const refused = await register('hash-1', sas('hash-1', generateSymmetricKey()));
    expect(refused.stored).toMatchObject({ outcome: 'refused', reason: 'wrongKey', previous: { outcome: 'assigned', assignedHub: again.stored?.assignedHub } });
    const twice = await register('hash-1', sas('hash-1', generateSymmetricKey()));
    expect(twice.stored?.previous).toMatchObject({ outcome: 'assigned' });
    expect(twice.stored?.previous?.previous).toBeUndefined();
  });

  test('static', async () => {
    const key = await enroll('static-1', { allocationPolicy: 'static', iotHubs: ['hub-a'] });
    const { info } = await register('static-1', sas('static-1', key));
    expect(assignment(onlyTrace(info))).toMatchObject({ policy: 'static', chosen: { name: 'hub-a' }, why: { rule: 'static' } });
  });

  test('geoLatency: the latency table decides, and an unknown network falls back to the hash', async () => {
    const key = await enroll('geo-1', { allocationPolicy: 'geoLatency' });
    const near = await register('geo-1', sas('geo-1', key), {}, '10.1.2.3');
    expect(assignment(onlyTrace(near.info))).toMatchObject({
      policy: 'geoLatency',
      chosen: { name: 'hub-b' },
      why: { rule: 'lowestLatency', latencyMs: { 'hub-a': 40, 'hub-b': 5 } },
    });
    const key2 = await enroll('geo-2', { allocationPolicy: 'geoLatency' });
    const far = await register('geo-2', sas('geo-2', key2), {}, '192.0.2.1');
    expect(assignment(onlyTrace(far.info))?.why).toMatchObject({ rule: 'hashed', latencyUnknown: true });
  });

  test('custom: the webhook answer, its key kept out of the trace', async () => {
    webhookAnswer = { status: 200, body: { iotHubHostName: 'hub-a' } };
    const key = await enroll('hook-1', { allocationPolicy: 'custom', customAllocationDefinition: { webhookUrl, apiVersion: '2019-03-31' } });
    const { answer, info } = await register('hook-1', sas('hook-1', key));
    expect(answer.status).toBe('assigned');
    const why = assignment(onlyTrace(info))?.why;
    expect(why).toEqual({ rule: 'webhook', webhookUrl: webhookUrl.replace('?code=secret', ''), iotHubHostName: hubA.hostName });
  });
});
