/**
 * Microsoft's Azure IoT C SDK 1.15 (built by test/peers/build-c-sdk.sh from the peers tarball beside the checkout, driven by
 * our test/peers/c-device) against OpenDPS. The SDK dials fixed ports (MQTT 8883, AMQP 5671, HTTPS
 * and both WebSocket transports 443) and splits the hub name into `{hubName}.{suffix}`, so OpenDPS
 * and the device run in a private network and mount namespace (support/c-sdk-netns.js): its own
 * loopback, where those ports are free whatever else runs on the machine, and an /etc/hosts naming
 * a dotted host. The dev CA is trusted with the SDK's OPTION_TRUSTED_CERT, nothing else.
 * Cells: five provisioning transports x {individual key, group-derived key}, answered at once and
 * with 202 + polling (OPENDPS_ANSWER_WITHIN_MS=0); after each, the SDK's IoT Hub device client over
 * MQTT to the assigned hub on 8883: telemetry the hub received, and the twin's desired properties.
 * Needs root (unshare, mount) and the built packages (`npx tsc -b`).
 */
import { spawn, execFile, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

const REPO = path.resolve(__dirname, '..');
const SERVER_DIST = path.join(REPO, 'packages/server/dist/index.js');
/** A dotted name: the C SDK's hub client needs `{hubName}.{suffix}`. */
const HOST = 'dps.opendps.test';
const TRANSPORTS = ['mqtt', 'mqttws', 'amqp', 'amqpws', 'http'] as const;
type Transport = (typeof TRANSPORTS)[number];
const MODES = [
  { name: 'answered at once', env: {} },
  { name: '202 and polling', env: { OPENDPS_ANSWER_WITHIN_MS: '0' } },
] as const;

interface Step {
  step: string;
  ok: boolean;
  status?: string;
  assignedHub?: string | null;
  deviceId?: string | null;
  error?: string | null;
  statuses?: string;
  result?: string;
  connectionReason?: string;
  twin?: string | null;
}

interface DeviceRun {
  code: number | null;
  signal: string | null;
  steps: Record<string, Step | undefined>;
  /** The SDK's LOG_LEVEL_ERROR lines. */
  errors: string[];
  output: string;
}

interface Ready {
  idScope: string;
  caFile: string;
  hubs: string[];
}

/** One namespace: OpenDPS inside, driven line by line over the child's stdin/stdout. */
class Namespace {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private stderr = '';
  ready!: Ready;

  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly dir: string,
  ) {}

  static async start(binary: string, env: Record<string, string>): Promise<Namespace> {
    const dir = mkdtempSync(path.join(tmpdir(), 'opendps-c-sdk-'));
    const hosts = path.join(dir, 'hosts');
    writeFileSync(hosts, `127.0.0.1 localhost\n::1 localhost\n127.0.0.1 ${HOST}\n`);
    const dataDir = path.join(dir, 'data');
    const config = JSON.stringify({ repo: REPO, dataDir, host: HOST, binary });
    const script = 'ip link set lo up && mount --bind "$1" /etc/hosts && exec "$2" "$3" "$4"';
    const child = spawn('unshare', ['-n', '-m', 'sh', '-c', script, 'sh', hosts, process.execPath, path.join(__dirname, 'support', 'c-sdk-netns.js'), config], {
      // cwd test/: require() finds the Azure SDK packages in this package's node_modules.
      cwd: __dirname,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    });
    const namespace = new Namespace(child, dir);
    child.stderr.on('data', (chunk: Buffer) => (namespace.stderr = (namespace.stderr + chunk.toString()).slice(-10_000)));
    namespace.ready = await new Promise<Ready>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`the namespace exited with ${code}:\n${namespace.stderr}`)));
      readline.createInterface({ input: child.stdout }).on('line', (line) => {
        const message = JSON.parse(line) as { ready?: boolean; fatal?: string; id?: number; result?: unknown; error?: string } & Ready;
        if (message.fatal) reject(new Error(message.fatal));
        else if (message.ready) resolve(message);
        else if (message.id !== undefined) {
          const waiter = namespace.waiting.get(message.id);
          namespace.waiting.delete(message.id);
          if (message.error) waiter?.reject(new Error(message.error));
          else waiter?.resolve(message.result);
        }
      });
    });
    return namespace;
  }

  request<T>(op: string, body: Record<string, unknown>): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.child.stdin.write(`${JSON.stringify({ id, op, ...body })}\n`);
    });
  }

  async stop(): Promise<void> {
    const exited = new Promise((resolve) => (this.child.exitCode === null ? this.child.once('exit', resolve) : resolve(undefined)));
    this.child.stdin.end();
    await exited;
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function buildCSdk(): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('bash', [path.join(__dirname, 'peers', 'build-c-sdk.sh')], { timeout: 900_000 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`building the C SDK failed: ${error.message}\n${stderr}`));
      resolve(stdout.trim().split('\n').pop() ?? '');
    }),
  );
}

/** DPS's group key derivation: HMAC-SHA256(group key, registration id), as a C SDK app does before registering. */
function deriveKey(groupKey: string, registrationId: string): string {
  return createHmac('sha256', Buffer.from(groupKey, 'base64')).update(registrationId).digest('base64');
}

let binary: string;

beforeAll(async () => {
  if (!existsSync(SERVER_DIST)) throw new Error(`${SERVER_DIST} is missing: run 'npx tsc -b' first.`);
  binary = await buildCSdk();
}, 900_000);

describe.each(MODES)('the C SDK, registration $name', ({ name: mode, env }) => {
  let ns: Namespace;
  const groupKey = randomBytes(64).toString('base64');
  const groupId = `c-sdk-group-${mode === '202 and polling' ? 'poll' : 'now'}`;
  const runs = new Map<string, Promise<DeviceRun>>();

  beforeAll(async () => {
    ns = await Namespace.start(binary, env);
    await ns.request('enroll', { kind: 'group', name: groupId, key: groupKey, desired: { source: 'group', mode } });
  }, 60_000);

  afterAll(() => ns?.stop());

  /** One C SDK run per cell (provisioning, then the hub), shared by the cell's two tests. */
  function run(transport: Transport, credential: 'individual' | 'group'): Promise<DeviceRun> {
    const cell = `${transport}/${credential}`;
    let started = runs.get(cell);
    if (!started) {
      started = (async () => {
        const registrationId = `c-sdk-${transport}-${credential}-${mode === '202 and polling' ? 'poll' : 'now'}`;
        let key: string;
        if (credential === 'individual') {
          key = randomBytes(32).toString('base64');
          await ns.request('enroll', { kind: 'individual', name: registrationId, key, desired: { source: 'individual', transport } });
        } else {
          key = deriveKey(groupKey, registrationId);
        }
        return ns.request<DeviceRun>('device', { args: [transport, HOST, ns.ready.idScope, registrationId, key, ns.ready.caFile, '30', '--hub'] });
      })();
      runs.set(cell, started);
    }
    return started;
  }

  if (mode === 'answered at once') {
    // What makes the cells pass is the dev CA and the key: without either, the same run is refused.
    it('over mqtt, trusting only the system CA bundle, fails the TLS handshake', async () => {
      const registrationId = 'c-sdk-untrusted';
      const result = await ns.request<DeviceRun>('device', {
        args: ['mqtt', HOST, ns.ready.idScope, registrationId, deriveKey(groupKey, registrationId), '/etc/ssl/certs/ca-certificates.crt', '10'],
      });
      expect(result.steps.provision).toMatchObject({ ok: false, assignedHub: null });
      expect(result.output).toMatch(/certificate verify failed|self.signed/i);
    }, 60_000);

    it('over mqtt, a key the group did not derive is refused as unauthorized', async () => {
      const registrationId = 'c-sdk-wrong-key';
      const result = await ns.request<DeviceRun>('device', {
        args: ['mqtt', HOST, ns.ready.idScope, registrationId, deriveKey(groupKey, 'someone-else'), ns.ready.caFile, '10'],
      });
      expect(result.steps.provision).toMatchObject({ ok: false, assignedHub: null });
      expect(result.steps.provision?.error).toMatch(/UNAUTHORIZED|DEV_AUTH_ERROR/);
    }, 60_000);
  }

  describe.each(TRANSPORTS)('over %s', (transport) => {
    describe.each(['individual', 'group'] as const)('with %s symmetric key', (credential) => {
      const registrationId = `c-sdk-${transport}-${credential}-${mode === '202 and polling' ? 'poll' : 'now'}`;

      it('provisions: assigned to the built-in hub by its bare dotted name', async () => {
        const result = await run(transport, credential);
        const provision = result.steps.provision;
        if (!provision?.ok) {
          const log = await ns.request<string[]>('log', { match: registrationId });
          throw new Error(`provisioning failed: ${JSON.stringify(provision)}\n--- device ---\n${result.output.slice(-4000)}\n--- server ---\n${log.slice(-10).join('\n')}`);
        }
        // The default built-in hub is served on the device listeners under --host: bare, no port.
        expect(provision).toMatchObject({ status: 'assigned', deviceId: registrationId, assignedHub: HOST, error: null });
        // The SDK reports `assigning` only when it had to poll an operation.
        // Over AMQP the SDK logs an error for an attach without max-message-size.
        expect(result.errors.filter((line) => /max_message_size/.test(line))).toEqual([]);
        if (mode === '202 and polling') expect(provision.statuses).toMatch(/ASSIGNING/);
        else expect(provision.statuses).not.toMatch(/ASSIGNING/);
      }, 120_000);

      it("its IoT Hub client over MQTT sends telemetry the hub receives and reads the initial twin's desired properties", async () => {
        const result = await run(transport, credential);
        if (!result.steps.provision?.ok) throw new Error(`not provisioned, so no hub to reach: ${JSON.stringify(result.steps.provision)}`);
        const { telemetry, twin } = result.steps;
        if (!telemetry?.ok || !twin?.ok) throw new Error(`the hub client failed: ${JSON.stringify({ telemetry, twin })}\n${result.output.slice(-4000)}`);
        const received = await ns.request<Array<{ properties: Record<string, string>; payload: string }>>('telemetry', { deviceId: registrationId });
        expect(received).toHaveLength(1);
        expect(JSON.parse(received[0]?.payload ?? '')).toEqual({ source: 'azure-iot-sdk-c' });
        expect(received[0]?.properties).toMatchObject({ peer: 'c-sdk' });
        const document = JSON.parse(twin.twin ?? '') as { desired: Record<string, unknown> };
        const expected = credential === 'individual' ? { source: 'individual', transport } : { source: 'group', mode };
        expect(document.desired).toMatchObject(expected);
      }, 120_000);
    });
  });
});
