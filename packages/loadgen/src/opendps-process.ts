import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startRedis, type RedisServer } from './redis';
import { spawnUntil, type Spawned } from './processes-os';

/**
 * `opendps start` in a process of its own (what a benchmark measures must not share the client's
 * process): every listener on a free port, a temporary data directory, and for `redis` a private
 * redis-server.
 */
export type StoreKind = 'sqlite' | 'redis';

export interface OpenDpsConnection {
  idScope: string;
  serviceConnectionString: string;
  adminConnectionString?: string;
  caFile: string;
  endpoints: { mqtt: string | null; amqp: string | null; https: string; hubs: string[] };
}

export interface OpenDpsProcess {
  store: StoreKind;
  dataDir: string;
  connection: OpenDpsConnection;
  /** The server's process, and redis-server's for `redis`: their CPU is the server's. */
  pids: number[];
  stop(): Promise<void>;
}

/** The built CLI, next to this package in the workspace. */
export const CLI = path.resolve(__dirname, '..', '..', 'server', 'dist', 'cli.js');

export async function startOpenDpsProcess(options: { store: StoreKind; args?: string[]; env?: NodeJS.ProcessEnv }): Promise<OpenDpsProcess> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first ('pnpm -s build').`);
  const dataDir = mkdtempSync(path.join(tmpdir(), `opendps-bench-${options.store}-`));
  let redis: RedisServer | undefined;
  let server: Spawned | undefined;
  const stop = async () => {
    await server?.stop();
    await redis?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    if (options.store === 'redis') redis = await startRedis();
    const args = [CLI, 'start', '--data-dir', dataDir, '--host', 'localhost', '--https-port', '0', '--mqtt-port', '0', '--amqp-port', '0', '--hub-port', '0'];
    if (redis) args.push('--redis-url', redis.url);
    server = await spawnUntil([...args, ...(options.args ?? [])], (line) => line.includes('ready'), { env: { ...process.env, ...options.env } });
    const connection = JSON.parse(readFileSync(path.join(dataDir, 'connection.json'), 'utf8')) as OpenDpsConnection;
    const pids = [server.child.pid, redisPid(redis)].filter((pid): pid is number => pid !== undefined);
    return { store: options.store, dataDir, connection, pids, stop };
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
}

function redisPid(redis: RedisServer | undefined): number | undefined {
  return redis?.pid;
}
