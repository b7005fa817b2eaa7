import { fork } from 'node:child_process';
import path from 'node:path';
import { cpuUsage } from 'node:process';
import type { LoadOptions, LoadResult, Progress, RunHooks } from './run';
import { runLoad } from './run';

/**
 * `--processes N`: the load split over N worker processes (every N-th device each, a share of the
 * count, concurrency and rate), so one client core is not the ceiling. Progress and results come
 * back over IPC and are added up here.
 */
export type WorkerMessage =
  | { type: 'progress'; progress: Progress }
  | { type: 'done'; result: LoadResult; cpuMs: number }
  | { type: 'failed'; message: string };

export async function runProcesses(options: LoadOptions, processes: number, hooks: RunHooks = {}): Promise<{ result: LoadResult; cpuMs: number }> {
  if (processes <= 1) {
    const before = cpuUsage();
    const result = await runLoad(options, hooks);
    const used = cpuUsage(before);
    return { result, cpuMs: (used.user + used.system) / 1000 };
  }
  const shares = Array.from({ length: processes }, (_, k) => share(options, k, processes));
  const latest: Array<Progress | undefined> = [];
  const ticker = hooks.onProgress ? setInterval(() => hooks.onProgress?.(addProgress(latest)), hooks.progressIntervalMs ?? 1000) : undefined;
  try {
    const outcomes = await Promise.all(
      shares.map(
        (share, k) =>
          new Promise<{ result: LoadResult; cpuMs: number }>((resolve, reject) => {
            const child = fork(workerPath(), [], { serialization: 'advanced', stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
            let settled = false;
            child.on('message', (message: WorkerMessage) => {
              if (message.type === 'progress') latest[k] = message.progress;
              else if (message.type === 'done') {
                settled = true;
                resolve({ result: message.result, cpuMs: message.cpuMs });
                child.disconnect();
              } else {
                settled = true;
                reject(new Error(`worker ${k}: ${message.message}`));
              }
            });
            child.once('exit', (code) => {
              if (!settled) reject(new Error(`worker ${k} exited with ${code} before its result`));
            });
            // Workers report more often than progress is shown, so every line adds up fresh counts.
            child.send({ options: share, progressIntervalMs: Math.min(hooks.progressIntervalMs ?? 1000, 500) });
          }),
      ),
    );
    const result: LoadResult = {
      samples: outcomes.flatMap((outcome) => outcome.result.samples),
      elapsedMs: Math.max(...outcomes.map((outcome) => outcome.result.elapsedMs)),
      errors: addCounts(outcomes.map((outcome) => outcome.result.errors)),
    };
    const telemetries = outcomes.flatMap((outcome) => (outcome.result.telemetry ? [outcome.result.telemetry] : []));
    if (telemetries.length) {
      result.telemetry = {
        devices: telemetries.reduce((sum, t) => sum + t.devices, 0),
        sent: telemetries.reduce((sum, t) => sum + t.sent, 0),
        failed: telemetries.reduce((sum, t) => sum + t.failed, 0),
        connectMs: telemetries.flatMap((t) => t.connectMs),
        publishMs: telemetries.flatMap((t) => t.publishMs),
      };
    }
    hooks.onProgress?.(addProgress(outcomes.map((outcome) => finalProgress(outcome.result))));
    return { result, cpuMs: outcomes.reduce((sum, outcome) => sum + outcome.cpuMs, 0) };
  } finally {
    if (ticker) clearInterval(ticker);
  }
}

/** Worker `k` of `n`: devices k, k+n, …; its share of the count, concurrency and rate. */
export function share(options: LoadOptions, k: number, n: number): LoadOptions {
  const split = (total: number) => Math.floor(total / n) + (k < total % n ? 1 : 0);
  return {
    ...options,
    first: (options.first ?? 0) + k * (options.step ?? 1),
    step: (options.step ?? 1) * n,
    concurrency: Math.max(1, split(options.concurrency)),
    ...(options.count !== undefined ? { count: split(options.count) } : {}),
    ...(options.rate !== undefined ? { rate: options.rate / n } : {}),
  };
}

function workerPath(): string {
  // Workers run the built JavaScript; from the sources (tests) use the dist next to them.
  const here = __dirname.endsWith(`${path.sep}src`) ? path.join(__dirname, '..', 'dist') : __dirname;
  return path.join(here, 'worker.js');
}

function finalProgress(result: LoadResult): Progress {
  return {
    elapsedMs: result.elapsedMs,
    started: result.samples.length,
    done: result.samples.length,
    succeeded: result.samples.filter((sample) => sample.ok).length,
    inFlight: 0,
    errors: result.errors,
    telemetrySent: result.telemetry?.sent ?? 0,
    telemetryActive: 0,
  };
}

function addProgress(parts: ReadonlyArray<Progress | undefined>): Progress {
  const present = parts.filter((part): part is Progress => part !== undefined);
  const sum = (pick: (progress: Progress) => number) => present.reduce((total, part) => total + pick(part), 0);
  return {
    elapsedMs: Math.max(0, ...present.map((part) => part.elapsedMs)),
    started: sum((part) => part.started),
    done: sum((part) => part.done),
    succeeded: sum((part) => part.succeeded),
    inFlight: sum((part) => part.inFlight),
    errors: addCounts(present.map((part) => part.errors)),
    telemetrySent: sum((part) => part.telemetrySent),
    telemetryActive: sum((part) => part.telemetryActive),
  };
}

function addCounts(counts: ReadonlyArray<Record<string, number>>): Record<string, number> {
  const total: Record<string, number> = {};
  for (const count of counts) for (const [code, n] of Object.entries(count)) total[code] = (total[code] ?? 0) + n;
  return total;
}
