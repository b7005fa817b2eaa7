import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, unlinkSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** The part of `<data-dir>/connection.json` the fuzzer reads (README, "connection.json"). */
export interface Connection {
  idScope: string;
  serviceConnectionString: string;
  caFile: string;
  endpoints: { mqtt: string | null; amqp: string | null; https: string; hubs: string[] };
  instances?: Array<{ linkedHubs?: Array<{ hostName: string; connectionString?: string }> }>;
}

/** The server under test: spawned by the fuzzer (restartable), or one already running. */
export interface Target {
  connection: Connection;
  ca: string;
  /** Undefined when attached to a server whose process id was not given: no RSS or fd checks. */
  pid: number | undefined;
  /** Whether the process still runs (without a pid: whether it answers HTTPS). */
  alive(): Promise<boolean>;
  /** Kills and starts it again on the same data dir; undefined when attached. */
  restart?: () => Promise<void>;
  /** The last lines the server wrote, for a crash report. */
  output(): string;
  stop(): Promise<void>;
}

export interface SpawnOptions {
  /** The built CLI (packages/server/dist/cli.js). */
  cli: string;
  startTimeoutMs?: number;
}

export function splitHostPort(endpoint: string): { host: string; port: number } {
  const at = endpoint.lastIndexOf(':');
  return { host: endpoint.slice(0, at), port: Number(endpoint.slice(at + 1)) };
}

function readConnection(dataDir: string): Connection {
  return JSON.parse(readFileSync(path.join(dataDir, 'connection.json'), 'utf8')) as Connection;
}

/** `opendps start` on a temporary data dir with every port 0; resolves once connection.json is written. */
export async function spawnTarget(options: SpawnOptions): Promise<Target> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'opendps-fuzz-'));
  let child: ChildProcess | undefined;
  let log = '';
  let exited = false;

  const start = async (): Promise<void> => {
    const file = path.join(dataDir, 'connection.json');
    if (existsSync(file)) unlinkSync(file);
    exited = false;
    const args = [options.cli, 'start', '--data-dir', dataDir, '--host', 'localhost', '--mqtt-port', '0', '--amqp-port', '0', '--https-port', '0', '--hub-port', '0'];
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    const keep = (chunk: Buffer) => {
      log = (log + chunk.toString('utf8')).slice(-20_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.once('exit', () => {
      exited = true;
    });
    const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
    while (!existsSync(file)) {
      if (exited) throw new Error(`opendps start exited before it was ready:\n${log}`);
      if (Date.now() > deadline) throw new Error(`opendps start was not ready in time:\n${log}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    target.connection = readConnection(dataDir);
    target.pid = child.pid;
  };

  const kill = async (): Promise<void> => {
    if (!child || exited) return;
    const gone = new Promise((resolve) => child?.once('exit', resolve));
    child.kill('SIGKILL');
    await gone;
  };

  // Whatever way the fuzzer ends, the server it started ends with it.
  const killOnExit = () => child?.kill('SIGKILL');
  process.once('exit', killOnExit);

  const target: Target = {
    connection: undefined as unknown as Connection,
    ca: '',
    pid: undefined,
    alive: async () => !exited,
    restart: async () => {
      await kill();
      await start();
    },
    output: () => log,
    stop: async () => {
      if (child && !exited) {
        const gone = new Promise((resolve) => child?.once('exit', resolve));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child?.kill('SIGKILL'), 5000);
        await gone;
        clearTimeout(timer);
      }
      process.off('exit', killOnExit);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  try {
    await start();
  } catch (error) {
    await target.stop();
    throw error;
  }
  target.ca = readFileSync(target.connection.caFile, 'utf8');
  return target;
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[?::1\]?)$/i;

/** A server someone else started: its data dir (for connection.json) and optionally its pid. Loopback only. */
export function attachTarget(dataDir: string, pid?: number): Target {
  const connection = readConnection(dataDir);
  const { mqtt, amqp, https: httpsEndpoint, hubs } = connection.endpoints;
  for (const endpoint of [mqtt, amqp, httpsEndpoint, ...hubs]) {
    if (endpoint && !LOOPBACK.test(splitHostPort(endpoint).host)) throw new Error(`refusing to fuzz ${endpoint}: loopback addresses only`);
  }
  const ca = readFileSync(connection.caFile, 'utf8');
  const target: Target = {
    connection,
    ca,
    pid,
    alive: async () => (pid !== undefined ? existsSync(`/proc/${pid}`) : answersHttps(target, 5000)),
    output: () => '',
    stop: async () => undefined,
  };
  return target;
}

/** Resident set size in bytes, from /proc (Linux). */
export function residentBytes(pid: number): number | undefined {
  try {
    const match = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export function openFds(pid: number): number | undefined {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return undefined;
  }
}

/** Whether the HTTPS listener answers a request within `timeoutMs` (any status): the event loop turns. */
export function answersHttps(target: Target, timeoutMs: number): Promise<boolean> {
  const { host, port } = splitHostPort(target.connection.endpoints.https);
  return new Promise((resolve) => {
    const request = https.request({ host, port, path: '/', method: 'GET', ca: target.ca, agent: false, servername: 'localhost', timeout: timeoutMs }, (response) => {
      response.resume();
      response.on('end', () => resolve(true));
      response.on('error', () => resolve(false));
    });
    request.on('timeout', () => {
      request.destroy();
      resolve(false);
    });
    request.on('error', () => resolve(false));
    request.end();
  });
}
