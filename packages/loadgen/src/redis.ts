import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface RedisServerOptions {
  /** Turn on the append-only file (`appendfsync everysec`), so data survives restart(). Default off. */
  appendonly?: boolean;
  /** Extra redis-server arguments, e.g. `['--cluster-enabled', 'yes']`. */
  args?: string[];
  /** How long to wait for PONG. Default 10 s. */
  startTimeoutMs?: number;
}

export interface RedisServer {
  /** `redis://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** The data directory (AOF, cluster config); removed by stop(). */
  dir: string;
  /** redis-server's process id (its CPU counts as the server's in a benchmark). */
  readonly pid: number | undefined;
  /** SIGTERM, wait for the exit, remove the data directory. */
  stop(): Promise<void>;
  /** SIGKILL, at once (a crash); restart() may follow. */
  kill(): void;
  /** Stop (gracefully, unless already killed) and start again on the same port and directory, after `downMs` (default 0). */
  restart(downMs?: number): Promise<void>;
}

/**
 * A private redis-server (never the machine's on 6379) on a free loopback port with a temporary
 * directory, resolved once it answers PING; killed with this process if it dies. The benchmark runs
 * its Redis pass on one, and every test that needs a Redis (or must stop or restart one) uses it.
 */
export async function startRedis(options: RedisServerOptions = {}): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'opendps-redis-'));
  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--dir', dir,
    '--save', '',
    '--appendonly', options.appendonly ? 'yes' : 'no',
    '--daemonize', 'no',
    '--loglevel', 'warning',
    ...(options.args ?? []),
  ];
  const timeout = options.startTimeoutMs ?? 10_000;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const onProcessExit = () => child?.kill('SIGKILL');
  process.once('exit', onProcessExit);

  const launch = async () => {
    const started = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    started.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child = started;
    exited = new Promise((resolve) => started.once('exit', () => resolve()));
    const deadline = Date.now() + timeout;
    while (!(await pings(port))) {
      if (started.exitCode !== null || Date.now() > deadline) {
        started.kill('SIGKILL');
        throw new Error(`redis-server on port ${port} did not start: ${stderr.trim() || 'no answer to PING'}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  };
  const halt = async (signal: NodeJS.Signals) => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };

  await launch();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    get pid() {
      return child?.pid;
    },
    async stop() {
      await halt('SIGTERM');
      process.removeListener('exit', onProcessExit);
      rmSync(dir, { recursive: true, force: true });
    },
    kill() {
      child?.kill('SIGKILL');
    },
    async restart(downMs = 0) {
      await halt('SIGTERM');
      if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs));
      await launch();
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** True when something on the port answers `+PONG` to an inline PING. */
function pings(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let answer = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      answer += chunk.toString();
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'));
    });
  });
}
