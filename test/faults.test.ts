/**
 * Faults under load (docs/operations.md "Faults"): a burst of registrations over HTTPS, MQTT and AMQP
 * runs while Redis restarts (AOF), while one master of a three-master Redis Cluster is killed and
 * comes back, while one of two OpenDPS nodes is SIGKILLed, while the allocation webhook is down, and
 * while a hub linked by connection string is unreachable. Every answer a device sees must be `assigned`, `assigning`, a retryable 429/5xx
 * with `retry-after` on its wire, or (webhook and hub failures, as DPS) a final `failed` with an
 * errorCode; once the fault clears every device that asks again is assigned; and every device told
 * `assigned` has its registration record (service API) and its hub identity.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { deriveDeviceKey } from '@opendps/attestation';
import { generateSymmetricKey, parseConnectionString, silentLogger } from '@opendps/model';
import { createSasToken } from '@opendps/attestation';
import { createServer, type RunningServer } from '@opendps/server';
import { openSession } from '../packages/loadgen/src/clients/register';
import type { Answer, ClientTarget, Transport } from '../packages/loadgen/src/clients/types';
import { hubTwin, portOf, rawHttps, startGateway, type Gateway } from './support/devices';
import { serviceClient } from './support/opendps';
import { startRedis, type RedisServer } from './support/redis-server';

jest.setTimeout(60_000);

/** One answer as the device saw it. */
interface Seen {
  status: number;
  retryAfter: boolean;
  outcome?: string;
  errorCode?: number;
}

interface DeviceRun {
  registrationId: string;
  transport: Transport;
  answers: Seen[];
  assigned?: { assignedHub: string; deviceId: string };
  failedCode?: number;
  /** Connections lost or requests not answered: the SDKs retry these too; counted, not hidden. */
  noAnswer: string[];
}

/** A waiting device never waits longer than this in the test (the retry-after itself is checked on the wire). */
const MAX_WAIT_MS = 100;
/** A request that has no answer by then counts as unanswered. */
const REQUEST_TIMEOUT_MS = 15_000;
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    work,
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms))),
  ]).finally(() => clearTimeout(timer));
}

function seen(answer: Answer): Seen {
  const body = (answer.body ?? {}) as { status?: string; errorCode?: number; registrationState?: { errorCode?: number } };
  return {
    status: answer.status,
    retryAfter: answer.retryAfterMs !== undefined,
    ...(typeof body.status === 'string' ? { outcome: body.status.toLowerCase() } : {}),
    ...(body.errorCode !== undefined ? { errorCode: body.errorCode } : body.registrationState?.errorCode !== undefined ? { errorCode: body.registrationState.errorCode } : {}),
  };
}

/**
 * One device to a final answer, as the SDKs behave: poll while assigning, repeat a 429/5xx after
 * its retry-after, reconnect when the connection is lost; stop at `assigned`, `failed`, a refusal,
 * or `deadline`.
 */
async function provision(targets: ClientTarget | ClientTarget[], registrationId: string, key: string, transport: Transport, deadline: number): Promise<DeviceRun> {
  const run: DeviceRun = { registrationId, transport, answers: [], noAnswer: [] };
  const candidates = Array.isArray(targets) ? targets : [targets];
  for (let attempt = 0; Date.now() < deadline; attempt++) {
    // Behind a load balancer, a lost connection is retried on the next node.
    const target = candidates[attempt % candidates.length]!;
    let opened: Awaited<ReturnType<typeof openSession>> | undefined;
    try {
      opened = await withTimeout(openSession(transport, target, { registrationId, key }), REQUEST_TIMEOUT_MS, 'connect');
      let request: Parameters<typeof opened.session.request>[0] = { kind: 'register' };
      while (Date.now() < deadline) {
        const answer: Answer = await withTimeout(opened.session.request(request), REQUEST_TIMEOUT_MS, request.kind);
        const one = seen(answer);
        run.answers.push(one);
        const wait = Math.min(answer.retryAfterMs ?? MAX_WAIT_MS, MAX_WAIT_MS);
        if (one.status === 429 || one.status >= 500) {
          await pause(wait);
          request = { kind: 'register' };
        } else if (one.outcome === 'assigning') {
          await pause(wait);
          request = { kind: 'poll', operationId: (answer.body as { operationId: string }).operationId };
        } else if (one.outcome === 'assigned') {
          const state = (answer.body as { registrationState: { assignedHub: string; deviceId: string } }).registrationState;
          run.assigned = { assignedHub: state.assignedHub, deviceId: state.deviceId };
          return run;
        } else {
          if (one.outcome === 'failed') run.failedCode = one.errorCode ?? -1;
          return run;
        }
      }
    } catch (error) {
      run.noAnswer.push((error as Error).message);
      await pause(MAX_WAIT_MS);
    } finally {
      opened?.session.close();
    }
  }
  return run;
}

/** The wires a burst's devices use in turn. */
const WIRES: readonly Transport[] = ['https', 'mqtt', 'amqp'];

interface Burst {
  runs: DeviceRun[];
}

/**
 * `count` devices (HTTPS, MQTT and AMQP in turn) from `concurrency` clients; `fault` starts once
 * `faultAfter` devices have finished and the burst goes on while it lasts.
 */
async function burst(options: {
  target: ClientTarget | ClientTarget[];
  prefix: string;
  groupKey: string;
  count: number;
  concurrency?: number;
  faultAfter?: number;
  fault?: () => Promise<void>;
  deadlineMs?: number;
}): Promise<Burst & { faultDone: Promise<void> }> {
  const { target, prefix, groupKey, count } = options;
  const deadline = Date.now() + (options.deadlineMs ?? 30_000);
  const runs: DeviceRun[] = [];
  let next = 0;
  let finished = 0;
  let faultDone: Promise<void> = Promise.resolve();
  let faultStarted = false;
  const worker = async () => {
    while (next < count) {
      const index = next++;
      const registrationId = `${prefix}-${index}`;
      const transport = WIRES[index % WIRES.length]!;
      // Several nodes: each device starts on one of them in turn (index / wires, so every wire reaches each node).
      const first = Math.floor(index / WIRES.length) % (Array.isArray(target) ? target.length : 1);
      const start = Array.isArray(target) ? [...target.slice(first), ...target.slice(0, first)] : target;
      runs.push(await provision(start, registrationId, deriveDeviceKey(groupKey, registrationId), transport, deadline));
      finished += 1;
      if (!faultStarted && options.fault && finished >= (options.faultAfter ?? 0)) {
        faultStarted = true;
        faultDone = options.fault();
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 6 }, worker));
  return { runs, faultDone };
}

/** Every answer is assigned/assigning, retryable with retry-after, or (when allowed) a final failure with an errorCode. */
function expectOnlyAllowedAnswers(runs: DeviceRun[], finalFailureCodes: number[] = [], lostConnections = false): void {
  const wrong = runs.flatMap((run) =>
    run.answers
      .filter((answer) => {
        if (answer.status === 200 && answer.outcome === 'assigned') return false;
        if ((answer.status === 200 || answer.status === 202) && answer.outcome === 'assigning') return false;
        if ((answer.status === 429 || answer.status >= 500) && answer.retryAfter) return false;
        if (answer.status === 200 && answer.outcome === 'failed' && finalFailureCodes.includes(answer.errorCode ?? -1)) return false;
        return true;
      })
      .map((answer) => ({ registrationId: run.registrationId, transport: run.transport, ...answer })),
  );
  expect(wrong).toEqual([]);
  if (lostConnections) return;
  expect(runs.flatMap((run) => run.noAnswer.map((reason) => `${run.registrationId}: ${reason}`))).toEqual([]);
}

interface Deployment {
  server: RunningServer;
  target: ClientTarget;
  service: ReturnType<typeof serviceClient>;
  dataDir: string;
  stop(keepData?: boolean): Promise<void>;
}

async function deploy(
  options: { redisUrl?: string; instances?: Parameters<typeof createServer>[0]['instances']; dataDir?: string; httpsPort?: number; mqttPort?: number } = {},
): Promise<Deployment> {
  const dataDir = options.dataDir ?? mkdtempSync(path.join(tmpdir(), 'opendps-faults-'));
  const server = await createServer({
    dataDir,
    host: 'localhost',
    ports: { mqtt: options.mqttPort ?? 0, amqp: 0, https: options.httpsPort ?? 0, hub: 0 },
    logger: silentLogger,
    instanceRefreshMs: 100,
    ...(options.redisUrl ? { redisUrl: options.redisUrl } : {}),
    ...(options.instances ? { instances: options.instances } : {}),
    timeouts: { webhookAttemptMs: 1000, webhookAttempts: 2, webhookBackoffMs: 10, answerWithinMs: 2000 },
  });
  const { connection } = server;
  const ca = readFileSync(server.caFile, 'utf8');
  const endpoint = (value: string | null | undefined) => ({ host: 'localhost', port: portOf(value) });
  const target: ClientTarget = {
    idScope: connection.idScope,
    mqtt: endpoint(connection.endpoints.mqtt),
    amqp: endpoint(connection.endpoints.amqp),
    https: endpoint(connection.endpoints.https),
    ca,
  };
  const service = serviceClient(connection.serviceConnectionString, connection.endpoints.https, ca);
  return {
    server,
    target,
    service,
    dataDir,
    async stop(keepData = false) {
      await server.stop();
      if (!keepData) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function enrollGroup(deployment: Deployment, enrollmentGroupId: string, extra: Record<string, unknown> = {}): Promise<string> {
  const groupKey = generateSymmetricKey();
  await deployment.service.createOrUpdateEnrollmentGroup({
    enrollmentGroupId,
    attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: groupKey, secondaryKey: generateSymmetricKey() } },
    ...extra,
  } as never);
  return groupKey;
}

/** Every device told `assigned` has its registration record and its identity on the built-in hub. */
async function expectNothingLost(deployment: Deployment, runs: DeviceRun[], hubServer: RunningServer = deployment.server): Promise<void> {
  const hub = hubServer.hubs.get('hub-1');
  expect(hub).toBeDefined();
  const missing: string[] = [];
  for (const run of runs) {
    if (!run.assigned) continue;
    const { responseBody: record } = await deployment.service.getDeviceRegistrationState(run.registrationId);
    if (record.status !== 'assigned' || record.deviceId !== run.assigned.deviceId || record.assignedHub !== run.assigned.assignedHub) {
      missing.push(`${run.registrationId}: record ${record.status}`);
    }
    if (!(await hub!.getDevice(run.assigned.deviceId))) missing.push(`${run.registrationId}: no hub identity`);
  }
  expect(missing).toEqual([]);
}

/** After the fault: every device that was not assigned asks again and is. */
async function expectRetriesAssigned(target: ClientTarget | ClientTarget[], groupKey: string, runs: DeviceRun[]): Promise<DeviceRun[]> {
  const deadline = Date.now() + 20_000;
  const again = await Promise.all(
    runs.filter((run) => !run.assigned).map((run) => provision(target, run.registrationId, deriveDeviceKey(groupKey, run.registrationId), run.transport, deadline)),
  );
  expect(again.filter((run) => !run.assigned).map((run) => `${run.registrationId}: ${JSON.stringify(run.answers.at(-1))}`)).toEqual([]);
  return again;
}

describe('Redis restarted under load (AOF on)', () => {
  let redis: RedisServer;
  let deployment: Deployment;

  beforeAll(async () => {
    redis = await startRedis({ appendonly: true });
    deployment = await deploy({ redisUrl: redis.url });
  });
  afterAll(async () => {
    await deployment?.stop();
    await redis?.stop();
  });

  test('every answer is final or retryable, nothing acknowledged is lost, every retry is assigned', async () => {
    const groupKey = await enrollGroup(deployment, 'restart-fleet');
    const { runs, faultDone } = await burst({
      target: deployment.target,
      prefix: 'restart',
      groupKey,
      count: 80,
      faultAfter: 20,
      // Down for as long as a restart of a large data set might take, not just the instant of a restart.
      fault: () => redis.restart(1500),
    });
    await faultDone;
    expectOnlyAllowedAnswers(runs);
    const again = await expectRetriesAssigned(deployment.target, groupKey, runs);
    await expectNothingLost(deployment, [...runs, ...again]);
    expect(runs.filter((run) => run.assigned).length + again.length).toBe(80);
  });
});

/** Three masters on free ports whose cluster-bus ports (port + 10000) are valid too. */
async function startClusterNode(): Promise<RedisServer> {
  for (;;) {
    const node = await startRedis({
      appendonly: true,
      // `always`: a SIGKILLed master loses nothing it acknowledged (docs/operations.md "Faults" bounds `everysec`).
      args: ['--appendfsync', 'always', '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '500', '--cluster-announce-ip', '127.0.0.1'],
    });
    if (node.port + 10000 < 65536) return node;
    await node.stop();
  }
}

async function clusterOk(nodes: RedisServer[]): Promise<void> {
  for (let i = 0; ; i++) {
    const states = await Promise.all(nodes.map((node) => run('redis-cli', ['-p', String(node.port), 'CLUSTER', 'INFO']).catch(() => '')));
    if (states.every((state) => /cluster_state:ok/.test(state))) return;
    if (i > 200) throw new Error('the cluster did not come up');
    await pause(50);
  }
}

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(output) : reject(new Error(`${command} exited ${code}: ${output}`))));
  });
}

describe('Redis Cluster (three masters), one master killed under load', () => {
  let nodes: RedisServer[] = [];
  let deployment: Deployment;

  beforeAll(async () => {
    nodes = [await startClusterNode(), await startClusterNode(), await startClusterNode()];
    await run('redis-cli', ['--cluster', 'create', ...nodes.map((node) => `127.0.0.1:${node.port}`), '--cluster-replicas', '0', '--cluster-yes']);
    await clusterOk(nodes);
    deployment = await deploy({ redisUrl: nodes[0]!.url });
  });
  afterAll(async () => {
    await deployment?.stop();
    await Promise.all(nodes.map((node) => node.stop()));
  });

  test('the slots of the killed master answer retryably, and it loses nothing once back', async () => {
    const groupKey = await enrollGroup(deployment, 'cluster-fleet');
    const victim = nodes[1]!;
    const { runs, faultDone } = await burst({
      target: deployment.target,
      prefix: 'cluster',
      groupKey,
      count: 80,
      faultAfter: 20,
      fault: async () => {
        victim.kill();
        // The outage itself: long enough for the others to mark it failed (node timeout 500 ms).
        await pause(1500);
        await victim.restart();
        await clusterOk(nodes);
      },
    });
    await faultDone;
    expectOnlyAllowedAnswers(runs);
    // AMQP carries any 5xx as `amqp:internal-error` (the condition the SDK retries); the body keeps the code.
    const retryable = runs.flatMap((run) => run.answers.filter((answer) => answer.errorCode === 503002).map(() => run.transport));
    // The outage was seen, over every wire (with retry-after, checked above).
    expect(new Set(retryable)).toEqual(new Set(WIRES));
    const again = await expectRetriesAssigned(deployment.target, groupKey, runs);
    await expectNothingLost(deployment, [...runs, ...again]);
  });
});

/** An HTTP allocation webhook that can go down and come back on the same port. */
class Webhook {
  private server: http.Server | undefined;
  port = 0;
  constructor(private readonly hubHostName: () => string) {}
  async up(): Promise<void> {
    this.server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ iotHubHostName: this.hubHostName() }));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }
  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
  }
}

describe('the allocation webhook down under load', () => {
  let deployment: Deployment;
  let webhook: Webhook;

  beforeAll(async () => {
    deployment = await deploy();
    webhook = new Webhook(() => deployment.server.connection.instances[0]!.linkedHubs[0]!.hostName);
    await webhook.up();
  });
  afterAll(async () => {
    await webhook?.down();
    await deployment?.stop();
  });

  test('a device the webhook could not answer is failed with its errorCode (as DPS), and assigned once it is back', async () => {
    const groupKey = await enrollGroup(deployment, 'webhook-fleet', {
      allocationPolicy: 'custom',
      customAllocationDefinition: { webhookUrl: `http://127.0.0.1:${webhook.port}/allocate`, apiVersion: '2019-03-31' },
    });
    const { runs, faultDone } = await burst({ target: deployment.target, prefix: 'webhook', groupKey, count: 60, faultAfter: 15, fault: () => webhook.down() });
    await faultDone;
    expectOnlyAllowedAnswers(runs, [502201, 504201]);
    expect(runs.filter((run) => run.failedCode !== undefined).length).toBeGreaterThan(0);
    await webhook.up();
    const again = await expectRetriesAssigned(deployment.target, groupKey, runs);
    await expectNothingLost(deployment, [...runs, ...again]);
  });
});

describe('a hub linked by connection string unreachable under load', () => {
  /** The "Azure" side: another OpenDPS whose built-in hub serves the IoT Hub REST API. */
  let remote: Deployment;
  let dps: Deployment;
  let remotePorts: { httpsPort: number; mqttPort: number };

  beforeAll(async () => {
    remote = await deploy();
    remotePorts = { httpsPort: portOf(remote.server.connection.endpoints.https), mqttPort: portOf(remote.server.connection.endpoints.mqtt) };
    // The provisioning side trusts the remote hub's certificate: both start from one development CA.
    const dataDir = mkdtempSync(path.join(tmpdir(), 'opendps-faults-'));
    for (const file of ['ca.pem', 'ca-key.pem']) copyFileSync(path.join(remote.dataDir, file), path.join(dataDir, file));
    const connectionString = remote.server.hubs.get('hub-1')!.connectionString;
    dps = await deploy({ dataDir, instances: [{ name: 'default', linkedHubs: [{ name: 'azure', connectionString }] }] });
  });
  afterAll(async () => {
    await dps?.stop();
    await remote?.stop();
  });

  test('a device whose hub cannot be reached is failed with hubUnavailable (as DPS), and assigned once it is back', async () => {
    const groupKey = await enrollGroup(dps, 'remote-fleet');
    const { runs, faultDone } = await burst({
      target: dps.target,
      prefix: 'remote',
      groupKey,
      count: 60,
      faultAfter: 15,
      fault: () => remote.stop(true),
    });
    await faultDone;
    expectOnlyAllowedAnswers(runs, [503001]);
    expect(runs.filter((run) => run.failedCode === 503001).length).toBeGreaterThan(0);
    remote = await deploy({ dataDir: remote.dataDir, ...remotePorts });
    const again = await expectRetriesAssigned(dps.target, groupKey, runs);
    await expectNothingLost(dps, [...runs, ...again], remote.server);
  });
});

describe('an OpenDPS node killed under load (two nodes on one Redis)', () => {
  let redis: RedisServer;
  let a: Gateway;
  let b: Gateway;
  const targetOf = (node: Gateway): ClientTarget => ({
    idScope: node.connection.idScope,
    mqtt: { host: 'localhost', port: node.endpoints.mqttPort },
    amqp: { host: 'localhost', port: portOf(node.connection.endpoints.amqp) },
    https: { host: 'localhost', port: node.endpoints.httpsPort },
    ca: node.ca,
  });
  const serviceToken = (node: Gateway) => {
    const fields = parseConnectionString(node.connection.serviceConnectionString);
    return createSasToken({ resource: fields.HostName ?? '', key: fields.SharedAccessKey ?? '', keyName: fields.SharedAccessKeyName ?? '', expiry: Math.floor(Date.now() / 1000) + 3600 });
  };
  const serviceGet = (node: Gateway, path: string) =>
    rawHttps({ port: node.endpoints.httpsPort, ca: node.ca, method: 'GET', path: `${path}?api-version=2021-10-01`, headers: { authorization: serviceToken(node) } });

  beforeAll(async () => {
    redis = await startRedis({ appendonly: true });
    // A short lease: an operation the killed node held is taken over by a poll on the other soon.
    const env = { OPENDPS_LEASE_SECONDS: '1', OPENDPS_ANSWER_WITHIN_MS: '500' };
    a = await startGateway(['--redis-url', redis.url], env);
    b = await startGateway(['--redis-url', redis.url], env);
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.stop();
  });

  test('devices of the killed node lose their connection, retry on the other, and nothing told assigned is lost', async () => {
    const groupKey = generateSymmetricKey();
    const created = await rawHttps({
      port: a.endpoints.httpsPort,
      ca: a.ca,
      method: 'PUT',
      path: '/enrollmentGroups/killed-fleet?api-version=2021-10-01',
      headers: { authorization: serviceToken(a), 'content-type': 'application/json' },
      body: JSON.stringify({ enrollmentGroupId: 'killed-fleet', attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: groupKey, secondaryKey: generateSymmetricKey() } } }),
    });
    expect(created.status).toBe(200);
    const { runs, faultDone } = await burst({
      target: [targetOf(a), targetOf(b)],
      prefix: 'killed',
      groupKey,
      count: 80,
      faultAfter: 20,
      fault: () => a.kill(),
    });
    await faultDone;
    // A crash closes connections mid-request (the SDKs retry those); every answer sent is still allowed.
    expectOnlyAllowedAnswers(runs, [], true);
    // The crash was felt: some devices lost their connection to A mid-registration.
    expect(runs.filter((run) => run.noAnswer.length > 0).length).toBeGreaterThan(0);
    const again = await expectRetriesAssigned([targetOf(b)], groupKey, runs);
    const hub = b.connection.instances[0]!.linkedHubs[0]!.connectionString!;
    const missing: string[] = [];
    for (const run of [...runs.filter((r) => r.assigned), ...again]) {
      const record = await serviceGet(b, `/registrations/${run.registrationId}`);
      if (record.status !== 200 || record.json?.status !== 'assigned') missing.push(`${run.registrationId}: record ${record.status}`);
      const twin = await hubTwin(hub, b.ca, run.assigned!.deviceId);
      if (twin.status !== 200) missing.push(`${run.registrationId}: hub identity ${twin.status}`);
    }
    expect(missing).toEqual([]);
    expect(runs.length).toBe(80);
  });
});
