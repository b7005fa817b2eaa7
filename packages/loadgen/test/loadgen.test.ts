import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { TRANSPORTS, type ClientTarget, type Transport } from '../src/clients/types';
import { parseLoadgenOptions } from '../src/cli';
import { CLI, startOpenDpsProcess, type OpenDpsProcess } from '../src/opendps-process';
import { summarize, CSV_HEADER } from '../src/report';
import { runLoad, type LoadOptions } from '../src/run';
import { createServiceClient, symmetricKeyAttestation, type ServiceClient } from '../src/service-client';

/**
 * `opendps loadgen` against OpenDPS in its own process (the built CLI: run `pnpm -s build` first).
 * Structure and outcomes only; no timing is asserted.
 */
const run = promisify(execFile);
const GROUP_KEY = randomBytes(32).toString('base64');
let dps: OpenDpsProcess;
let service: ServiceClient;
let target: ClientTarget;
let work: string;
let hubHost: string;
const individual = Array.from({ length: 3 }, (_, index) => ({ registrationId: `ind-${index}`, key: randomBytes(32).toString('base64') }));

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'loadgen-test-'));
  dps = await startOpenDpsProcess({ store: 'sqlite' });
  const { connection } = dps;
  const ca = readFileSync(connection.caFile);
  service = createServiceClient({ connectionString: connection.serviceConnectionString, endpoint: connection.endpoints.https, ca });
  await service.putEnrollmentGroup('sym', { enrollmentGroupId: 'sym', attestation: symmetricKeyAttestation(GROUP_KEY, randomBytes(32).toString('base64')), provisioningStatus: 'enabled' });
  await service.putEnrollmentGroup('x509', {
    enrollmentGroupId: 'x509',
    attestation: { type: 'x509', x509: { signingCertificates: { primary: { certificate: readFileSync(path.join(dps.dataDir, 'ca.pem'), 'utf8') } } } },
    provisioningStatus: 'enabled',
  });
  for (const device of individual) {
    await service.putEnrollment(device.registrationId, { registrationId: device.registrationId, attestation: symmetricKeyAttestation(device.key, randomBytes(32).toString('base64')), provisioningStatus: 'enabled' });
  }
  const parsed = parseLoadgenOptions({ 'data-dir': dps.dataDir, 'group-key': GROUP_KEY }, work);
  target = parsed.load.target;
  hubHost = dps.connection.endpoints.hubs[0] ?? '';
}, 60_000);

afterAll(async () => {
  await dps?.stop();
  rmSync(work, { recursive: true, force: true });
});

const load = (transport: Transport, attestation: LoadOptions['attestation'], extra: Partial<LoadOptions> = {}): Promise<ReturnType<typeof summarize>> =>
  runLoad({ transport, target, attestation, concurrency: 3, count: 4, timeoutMs: 20_000, ...extra }).then((result) => summarize(transport, result));

describe.each(TRANSPORTS)('over %s', (transport) => {
  it('registers devices of a symmetric-key group, all assigned, no errors', async () => {
    const summary = await load(transport, { kind: 'group-key', groupKey: GROUP_KEY, prefix: `g-${transport}-` });
    expect(summary.errors).toEqual({});
    expect(summary.succeeded).toBe(4);
    expect(summary.phases.assigned.count).toBe(4);
    expect(summary.phases.tcpTls.p50).toBeGreaterThan(0);
  }, 60_000);

  it('registers the individual enrollments of a keys file', async () => {
    const summary = await load(transport, { kind: 'keys', devices: individual }, { count: undefined });
    expect(summary.errors).toEqual({});
    expect(summary.succeeded).toBe(3);
  }, 60_000);

  it('registers X.509 devices whose certificates it issues from the development CA', async () => {
    const summary = await load(transport, {
      kind: 'x509',
      caCert: readFileSync(path.join(dps.dataDir, 'ca.pem'), 'utf8'),
      caKey: readFileSync(path.join(dps.dataDir, 'ca-key.pem'), 'utf8'),
      prefix: `x-${transport}-`,
    });
    expect(summary.errors).toEqual({});
    expect(summary.succeeded).toBe(4);
  }, 60_000);
});

describe('load shapes', () => {
  it('an open loop stops at its count', async () => {
    const result = await runLoad({ transport: 'mqtt', target, attestation: { kind: 'group-key', groupKey: GROUP_KEY, prefix: 'open-' }, concurrency: 1, rate: 200, rampMs: 20, count: 7 });
    expect(result.samples).toHaveLength(7);
    expect(result.samples.every((sample) => sample.ok)).toBe(true);
  }, 60_000);

  it('an open loop with only a duration stops by itself, with nothing left in flight', async () => {
    const progress: number[] = [];
    const result = await runLoad(
      { transport: 'https', target, attestation: { kind: 'group-key', groupKey: GROUP_KEY, prefix: 'dur-' }, concurrency: 1, rate: 20, durationMs: 200 },
      { onProgress: (p) => progress.push(p.inFlight), progressIntervalMs: 50 },
    );
    expect(result.samples.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toBe(0);
    expect(result.errors).toEqual({});
  }, 60_000);

  it('refuses a load with neither count nor duration', async () => {
    await expect(runLoad({ transport: 'mqtt', target, attestation: { kind: 'group-key', groupKey: GROUP_KEY, prefix: 'x' }, concurrency: 1 })).rejects.toThrow(/count or a duration/);
  });

  it('sends telemetry to the assigned hub after provisioning', async () => {
    const result = await runLoad({
      transport: 'mqtt',
      target,
      attestation: { kind: 'group-key', groupKey: GROUP_KEY, prefix: 'tel-' },
      concurrency: 3,
      count: 3,
      telemetry: { intervalMs: 20, durationMs: 40 },
    });
    expect(result.errors).toEqual({});
    expect(result.samples.every((sample) => sample.assignedHub === hubHost)).toBe(true);
    expect(result.telemetry).toMatchObject({ devices: 3, failed: 0 });
    expect(result.telemetry?.sent).toBeGreaterThanOrEqual(3);
  }, 60_000);
});

describe('throttling', () => {
  let idScope: string;
  beforeAll(async () => {
    // An instance allowed one registration per second, on the default built-in hub.
    const added = await run(process.execPath, [CLI, 'instance', 'add', 'slow', '--registrations-per-second', '1', '--data-dir', dps.dataDir]);
    const instance = JSON.parse(added.stdout) as { idScope: string; serviceConnectionString: string };
    idScope = instance.idScope;
    const hub = (JSON.parse(readFileSync(path.join(dps.dataDir, 'connection.json'), 'utf8')) as { instances: Array<{ linkedHubs: Array<{ name: string }> }> }).instances[0]?.linkedHubs[0]?.name ?? '';
    await run(process.execPath, [CLI, 'hub', 'link', hub, '--builtin', '--instance', 'slow', '--data-dir', dps.dataDir]);
    const slow = createServiceClient({ connectionString: instance.serviceConnectionString, endpoint: dps.connection.endpoints.https, ca: readFileSync(dps.connection.caFile) });
    await slow.putEnrollmentGroup('sym', { enrollmentGroupId: 'sym', attestation: symmetricKeyAttestation(GROUP_KEY, randomBytes(32).toString('base64')), provisioningStatus: 'enabled' });
  }, 30_000);

  it('a 429 fails the device when no retry is allowed', async () => {
    const result = await runLoad({ transport: 'mqtt', target: { ...target, idScope }, attestation: { kind: 'group-key', groupKey: GROUP_KEY, prefix: 'nor-' }, concurrency: 3, count: 3, maxRetries: 0 });
    expect(result.errors['429001']).toBeGreaterThanOrEqual(1);
  }, 30_000);

  it('a 429 is repeated after its retry-after until every device is assigned', async () => {
    const result = await runLoad({
      transport: 'mqtt',
      target: { ...target, idScope },
      attestation: { kind: 'group-key', groupKey: GROUP_KEY, prefix: 'thr-' },
      concurrency: 3,
      count: 3,
      maxRetries: 10,
      // Were retry-after ignored, this interval would outlast the deadline.
      pollingIntervalMs: 120_000,
      timeoutMs: 30_000,
    });
    expect(result.errors).toEqual({});
    expect(result.samples.reduce((sum, sample) => sum + (sample.retries ?? 0), 0)).toBeGreaterThanOrEqual(1);
  }, 60_000);
});

describe('the opendps loadgen command', () => {
  it('splits the devices over --processes 2 and adds the results up, into JSON and CSV files', async () => {
    const json = path.join(work, 'out.json');
    const csv = path.join(work, 'out.csv');
    const { stdout } = await run(process.execPath, [
      CLI, 'loadgen', '--data-dir', dps.dataDir, '--group-key', GROUP_KEY, '--prefix', 'proc-', '--count', '10', '--concurrency', '4',
      '--processes', '2', '--transport', 'amqp', '--json', json, '--csv', csv,
    ]);
    const lines = stdout.trim().split('\n').map((line) => JSON.parse(line) as { type: string });
    expect(lines.at(-1)).toMatchObject({ type: 'summary', transport: 'amqp', started: 10, succeeded: 10, failed: 0 });
    const summary = JSON.parse(readFileSync(json, 'utf8')) as { succeeded: number; phases: Record<string, { p50: number; p90: number; p99: number; max: number }>; clientCpuMs: number };
    expect(summary.succeeded).toBe(10);
    expect(Object.keys(summary.phases)).toEqual(['tcpTls', 'connect', 'register', 'polling', 'assigned']);
    expect(summary.clientCpuMs).toBeGreaterThan(0);
    const [header, ...rows] = readFileSync(csv, 'utf8').trim().split('\n');
    expect(header).toBe(CSV_HEADER.join(','));
    expect(rows).toHaveLength(10);
    const ids = rows.map((row) => row.split(',')[1]);
    expect(new Set(ids)).toEqual(new Set(Array.from({ length: 10 }, (_, index) => `proc-${index}`)));
    expect(rows.every((row) => row.split(',')[2] === 'true')).toBe(true);
  }, 60_000);

  it('reads individual keys from a CSV file given on the command line', async () => {
    const keys = path.join(work, 'keys.csv');
    writeFileSync(keys, `registrationId,key\n${individual.map((device) => `${device.registrationId},${device.key}`).join('\n')}\n`);
    const { stdout } = await run(process.execPath, [CLI, 'loadgen', '--data-dir', dps.dataDir, '--keys', keys, '--transport', 'https']);
    expect(JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}')).toMatchObject({ type: 'summary', succeeded: 3, failed: 0 });
  }, 30_000);

  it('exits 2 with a usage message when no attestation is given', async () => {
    const failed = await run(process.execPath, [CLI, 'loadgen', '--data-dir', dps.dataDir]).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failed?.code).toBe(2);
    expect(failed?.stderr).toMatch(/exactly one of --group-key, --keys/);
  });

  it('exits 1 when devices fail (a key not derived from the group key)', async () => {
    const failed = await run(process.execPath, [CLI, 'loadgen', '--data-dir', dps.dataDir, '--group-key', randomBytes(32).toString('base64'), '--count', '2']).then(
      () => undefined,
      (error: { code: number; stdout: string }) => error,
    );
    expect(failed?.code).toBe(1);
    expect(JSON.parse(failed?.stdout.trim().split('\n').at(-1) ?? '{}')).toMatchObject({ failed: 2, errors: { '401002': 2 } });
  }, 30_000);
});
