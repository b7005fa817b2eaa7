import cluster, { type Worker } from 'node:cluster';
import type { Logger } from '@opendps/model';
import { openStore } from '@opendps/store';
import { ensureAdminPolicy } from './admin';
import type { ServerConfig } from './config';
import { isHubEventMessage } from './hub-events';
import { bootstrapInstances } from './instances';
import { ensureSharedDevPki } from './pki/dev-pki';
import { storeSharedPki } from './pki/shared-pki';

/**
 * `--workers N`: the primary prepares what the workers must agree on (dev PKI, instances, admin
 * key: made once here rather than raced by N processes), then forks N workers that each run the
 * whole server. node:cluster shares every listening socket (the primary accepts and hands
 * connections out round-robin), so the workers serve the same ports, port 0 included; the store
 * is shared (SQLite in WAL mode with immediate transactions, or Redis).
 */

/** IPC between the primary and its workers. */
export type WorkerMessage = { opendps: 'ready' } | { opendps: 'drain' };

export function isWorkerMessage(message: unknown, kind: WorkerMessage['opendps']): boolean {
  return typeof message === 'object' && message !== null && (message as { opendps?: unknown }).opendps === kind;
}

export const isClusterWorker = (): boolean => cluster.isWorker;

export interface PrimaryOptions {
  config: ServerConfig;
  logger: Logger;
  /** Resolves when SIGINT or SIGTERM asks for the drain. */
  stopRequested: Promise<void>;
}

/** Runs the primary until its workers drained; resolves with the exit code. */
export async function runPrimary({ config, logger, stopRequested }: PrimaryOptions): Promise<number> {
  const log = logger.child({ category: 'ServiceOperations' });
  const store = await openStore({ dataDir: config.dataDir, ...(config.redisUrl ? { redisUrl: config.redisUrl } : {}) });
  try {
    await ensureSharedDevPki(config.dataDir, config.host, storeSharedPki(store), config.serverKeyType);
    await bootstrapInstances(store, config, log);
    await ensureAdminPolicy(store);
  } finally {
    await store.close();
  }

  let stopping = false;
  let failedToStart = false;
  const workers = new Set<Worker>();
  const started = new Set<Worker>();
  let announced = false;
  const exits: number[] = [];
  let allExited: () => void = () => undefined;
  const exited = new Promise<void>((resolve) => (allExited = resolve));
  let requestStop: () => void = () => undefined;
  const stop = new Promise<void>((resolve) => (requestStop = resolve));
  void stopRequested.then(() => requestStop());

  const fork = (): void => {
    const worker = cluster.fork();
    workers.add(worker);
    worker.on('message', (message: unknown) => {
      if (isHubEventMessage(message)) {
        for (const other of workers) if (other !== worker && other.isConnected()) other.send(message);
      } else if (isWorkerMessage(message, 'ready')) {
        started.add(worker);
        if (!announced && started.size >= config.workers) {
          announced = true;
          log.info({ workers: config.workers, pids: [...workers].map((each) => each.process.pid) }, `OpenDPS workers ready: ${config.workers}`);
        }
      }
    });
    worker.on('exit', (code, signal) => {
      workers.delete(worker);
      if (!stopping && !started.has(worker)) {
        // It could not start (its reason is on stderr): starting another would fail the same way.
        failedToStart = true;
        requestStop();
      } else if (!stopping) {
        // A worker that died is replaced; what it had in flight is leased in the store for the next poll.
        log.error({ pid: worker.process.pid, code, signal }, 'a worker exited; starting another');
        fork();
        return;
      }
      exits.push(code ?? 1);
      if (stopping && workers.size === 0) allExited();
    });
  };
  for (let index = 0; index < config.workers; index++) fork();

  await stop;
  stopping = true;
  log.info({ workers: workers.size }, 'draining the workers');
  if (workers.size === 0) allExited();
  for (const worker of workers) if (worker.isConnected()) worker.send({ opendps: 'drain' } satisfies WorkerMessage);
  // Each worker bounds its own drain; this only catches one that hangs.
  const hung = setTimeout(() => {
    for (const worker of workers) worker.process.kill('SIGKILL');
  }, config.drainTimeoutMs + 2_000);
  await exited;
  clearTimeout(hung);
  const failed = exits.filter((code) => code !== 0).length;
  log.info({ workers: exits.length, failed }, 'workers drained');
  return failed || failedToStart ? 1 : 0;
}
