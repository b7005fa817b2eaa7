import { performance } from 'node:perf_hooks';
import type { CorpusContext } from './corpus/context';
import { sendConnection } from './connection';
import { LISTENERS, type ListenerName } from './listeners';
import { deviceToken, hubDeviceToken, hubServiceToken, PROBE_REGISTRATION_ID, probeRegistration, serviceToken } from './probe';
import { Rng } from './rng';
import { answersHttps, openFds, residentBytes, splitHostPort, type Target } from './target';

export interface FuzzOptions {
  listeners: ListenerName[];
  /** Frames per listener (default 100,000). */
  frames?: number;
  seed?: number;
  /** Frames per batch; the checks run after each batch (default 1000). */
  batchFrames?: number;
  /** Connections open at once within a batch (default 16). */
  concurrency?: number;
  /** Replay only this batch of each listener. */
  onlyBatch?: number;
  maxRssMb?: number;
  /** A batch (or the liveness check after it) that takes longer counts as a hang (default 30 s). */
  hangMs?: number;
  /** How long the server may take to close a fuzz connection, and its fds to return (default 5 s). */
  graceMs?: number;
  /** Deadline of the registration probe (default 15 s). */
  probeTimeoutMs?: number;
  /** After a crash, hang or runaway RSS, replay the batch's connections one by one to name the first culprit. */
  minimize?: boolean;
  /** How long each replayed connection is watched (default 2 s). */
  minimizeWindowMs?: number;
  /** Progress lines; silent by default. */
  log?: (line: string) => void;
  now?: () => number;
}

export interface Finding {
  listener: ListenerName;
  batch: number;
  kind: 'crash' | 'hang' | 'rss' | 'fd-leak' | 'registration' | 'open-connection' | 'server-error' | 'reproducer';
  detail: string;
}

export interface ListenerResult {
  listener: ListenerName;
  frames: number;
  connections: number;
  crashes: number;
  hangs: number;
  leakedFds: number;
  /** Connections the server left open past the grace period. */
  openConnections: number;
  /** HTTP 5xx answers to fuzzed requests. */
  serverErrors: number;
  maxRssBytes: number | undefined;
  rssExceeded: number;
  registrationsOk: number;
  registrations: number;
  seconds: number;
}

export interface FuzzReport {
  seed: number;
  results: ListenerResult[];
  findings: Finding[];
  /** True when nothing crashed, hung, leaked, grew past the bound or failed to register. */
  clean: boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** SIGKILL that tolerates a process already gone. */
function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // it exited on its own in the meantime
  }
}

/** Runs `tasks` with at most `limit` in flight. */
async function pool<T>(tasks: Array<() => Promise<T>>, limit: number): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const index = next++;
      results[index] = await (tasks[index] as () => Promise<T>)();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return results;
}

/** Polls until the server's fd count is back at `baseline`; the excess left after `graceMs`. */
async function fdExcess(pid: number, baseline: number, graceMs: number, now: () => number): Promise<number> {
  const deadline = now() + graceMs;
  for (;;) {
    const count = openFds(pid);
    if (count === undefined) return 0;
    if (count <= baseline || now() >= deadline) return Math.max(0, count - baseline);
    await sleep(25);
  }
}

/** A baseline once the count holds still for a few readings (or the grace period ends). */
async function settledFds(pid: number, graceMs: number, now: () => number): Promise<number | undefined> {
  const deadline = now() + graceMs;
  let last = openFds(pid);
  let steady = 0;
  while (last !== undefined && steady < 4 && now() < deadline) {
    await sleep(50);
    const count = openFds(pid);
    steady = count === last ? steady + 1 : 0;
    last = count;
  }
  return last;
}

/**
 * Replays connections one at a time against the fresh server; the index of the first after which the
 * server died, outgrew `maxRss` or stopped answering within `windowMs`.
 */
async function findCulprit(
  target: Target,
  endpoint: () => string | null,
  connections: Buffer[][],
  bounds: { maxRss: number; graceMs: number; windowMs: number },
): Promise<number | undefined> {
  for (let index = 0; index < connections.length; index++) {
    const address = endpoint(); // a restarted server listens on new ports
    if (!address) return undefined;
    const { host, port } = splitHostPort(address);
    const sent = sendConnection(host, port, target.ca, connections[index] as Buffer[], bounds.graceMs);
    const deadline = performance.now() + bounds.windowMs;
    let failed = false;
    while (!failed && performance.now() < deadline) {
      await sleep(50);
      const rss = target.pid !== undefined ? residentBytes(target.pid) : undefined;
      if (rss !== undefined && rss > bounds.maxRss && target.pid !== undefined) kill(target.pid);
      failed = !(await target.alive()) || (rss !== undefined && rss > bounds.maxRss);
    }
    if (!failed) failed = !(await answersHttps(target, bounds.windowMs));
    await sent;
    if (failed) return index;
  }
  return undefined;
}

export async function runFuzz(target: Target, options: FuzzOptions): Promise<FuzzReport> {
  const seed = options.seed ?? 1;
  const totalFrames = options.frames ?? 100_000;
  const batchFrames = options.batchFrames ?? 1000;
  const concurrency = options.concurrency ?? 16;
  const maxRss = (options.maxRssMb ?? 512) * 1024 * 1024;
  const hangMs = options.hangMs ?? 30_000;
  const graceMs = options.graceMs ?? 5000;
  const probeTimeoutMs = options.probeTimeoutMs ?? 15_000;
  const log = options.log ?? (() => undefined);
  const now = options.now ?? (() => performance.now());
  const findings: Finding[] = [];
  const results: ListenerResult[] = [];

  const context = (): CorpusContext => {
    const hubHost = target.connection.endpoints.hubs[0] ?? 'localhost';
    return {
      idScope: target.connection.idScope,
      registrationId: PROBE_REGISTRATION_ID,
      deviceToken: deviceToken(target),
      hubHost,
      serviceToken: serviceToken(target),
      hubDeviceToken: hubDeviceToken(target, hubHost),
      hubServiceToken: hubServiceToken(target),
    };
  };
  let ctx = context();
  // A first registration puts the probe device on the built-in hub, so hub frames can authenticate.
  const first = await probeRegistration(target, probeTimeoutMs);
  if (!first.ok) throw new Error(`the probe device does not register before fuzzing: ${first.error ?? ''}`);
  let baseline = target.pid !== undefined ? await settledFds(target.pid, graceMs, now) : undefined;

  /** After a crash, hang or runaway memory: a fresh server (when we own it), else stop this listener. */
  const recover = async (): Promise<boolean> => {
    if (!target.restart) return false;
    await target.restart();
    ctx = context();
    baseline = target.pid !== undefined ? await settledFds(target.pid, graceMs, now) : undefined;
    return true;
  };

  for (const name of options.listeners) {
    const listener = LISTENERS[name];
    const result: ListenerResult = {
      listener: name, frames: 0, connections: 0, crashes: 0, hangs: 0, leakedFds: 0, openConnections: 0, serverErrors: 0,
      maxRssBytes: undefined, rssExceeded: 0, registrationsOk: 0, registrations: 0, seconds: 0,
    };
    results.push(result);
    const started = now();
    const record = (batch: number, kind: Finding['kind'], detail: string) => {
      findings.push({ listener: name, batch, kind, detail });
      log(`${name} batch ${batch}: ${kind}: ${detail} (replay: --listeners ${name} --seed ${seed} --batch ${batch})`);
    };

    for (let batch = options.onlyBatch ?? 0; result.frames < totalFrames; batch++) {
      const endpoint = listener.endpoint(target.connection);
      if (!endpoint) {
        record(batch, 'crash', 'the server does not run this listener');
        break;
      }
      const { host, port } = splitHostPort(endpoint);
      const rng = Rng.forBatch(seed, name, batch);
      const connections: Buffer[][] = [];
      let frames = 0;
      while (frames < Math.min(batchFrames, totalFrames - result.frames)) {
        const one = listener.connection(rng, ctx);
        connections.push(one);
        frames += one.length;
      }

      // RSS sampled while the batch runs: a runaway allocation is caught before it takes the machine.
      let rssOver = false;
      const sample = () => {
        if (target.pid === undefined) return;
        const rss = residentBytes(target.pid);
        if (rss === undefined) return;
        result.maxRssBytes = Math.max(result.maxRssBytes ?? 0, rss);
        if (rss > maxRss && !rssOver) {
          rssOver = true;
          kill(target.pid);
        }
      };
      const sampler = setInterval(sample, 100);
      let hangTimer: NodeJS.Timeout | undefined;
      const sent = pool(connections.map((frames) => () => sendConnection(host, port, target.ca, frames, graceMs)), concurrency);
      const outcome = await Promise.race([sent, new Promise<'hang'>((resolve) => (hangTimer = setTimeout(() => resolve('hang'), hangMs)))]);
      clearTimeout(hangTimer);
      clearInterval(sampler);
      sample();
      result.frames += frames;
      result.connections += connections.length;

      const alive = await target.alive();
      let broken = true;
      if (rssOver) {
        result.rssExceeded += 1;
        record(batch, 'rss', `RSS over ${options.maxRssMb ?? 512} MB; the server was killed`);
      } else if (!alive) {
        result.crashes += 1;
        record(batch, 'crash', `the server exited:\n${target.output().split('\n').slice(-15).join('\n')}`);
      } else if (outcome === 'hang' || !(await answersHttps(target, hangMs))) {
        result.hangs += 1;
        record(batch, 'hang', outcome === 'hang' ? `the batch did not finish within ${hangMs} ms` : `HTTPS refused or did not answer within ${hangMs} ms`);
      } else broken = false;
      if (broken || outcome === 'hang') {
        if (!(await recover())) break;
        if (options.minimize) {
          const culprit = await findCulprit(target, () => listener.endpoint(target.connection), connections, { maxRss, graceMs, windowMs: options.minimizeWindowMs ?? 2000 });
          if (culprit !== undefined) {
            record(batch, 'reproducer', `connection ${culprit} of ${connections.length} alone: ${Buffer.concat(connections[culprit] as Buffer[]).toString('hex').slice(0, 4000)}`);
            if (!(await recover())) break;
          }
        }
        if (options.onlyBatch !== undefined) break;
        continue;
      }
      const timeouts = outcome.filter((o) => o.outcome === 'timeout').length;
      const serverErrors = outcome.reduce((n, o) => n + o.serverErrors, 0);
      if (serverErrors > 0) {
        result.serverErrors += serverErrors;
        record(batch, 'server-error', `${serverErrors} HTTP 5xx answer(s) to malformed requests`);
      }
      if (timeouts > 0) {
        result.openConnections += timeouts;
        record(batch, 'open-connection', `${timeouts} connection(s) still open ${graceMs} ms after the client's FIN`);
      }

      if (target.pid !== undefined && baseline !== undefined) {
        const excess = await fdExcess(target.pid, baseline, graceMs, now);
        if (excess > 0) {
          result.leakedFds += excess;
          record(batch, 'fd-leak', `${excess} fd(s) above the baseline of ${baseline} after ${graceMs} ms`);
          baseline += excess; // count each leak once
        }
      }

      const probe = await probeRegistration(target, probeTimeoutMs);
      result.registrations += 1;
      if (probe.ok) result.registrationsOk += 1;
      else record(batch, 'registration', probe.error ?? 'failed');
      log(`${name} batch ${batch}: ${result.frames} frames, ${result.connections} connections`);
      if (options.onlyBatch !== undefined) break;
    }
    result.seconds = (now() - started) / 1000;
  }

  const clean = results.every(
    (r) => r.crashes === 0 && r.hangs === 0 && r.leakedFds === 0 && r.rssExceeded === 0 && r.openConnections === 0 && r.serverErrors === 0 && r.registrationsOk === r.registrations,
  ) && findings.length === 0;
  return { seed, results, findings, clean };
}

export function formatReport(report: FuzzReport, maxRssMb: number): string {
  const header = ['listener', 'frames', 'connections', 'crashes', 'hangs', 'leaked fds', 'open conns', '5xx', 'max RSS', 'registrations OK', 'time'];
  const rows = report.results.map((r) => [
    r.listener,
    String(r.frames),
    String(r.connections),
    String(r.crashes),
    String(r.hangs),
    String(r.leakedFds),
    String(r.openConnections),
    String(r.serverErrors),
    r.maxRssBytes === undefined ? 'n/a' : `${Math.round(r.maxRssBytes / 1048576)} MB${r.rssExceeded ? ` (>${maxRssMb} x${r.rssExceeded})` : ''}`,
    `${r.registrationsOk}/${r.registrations}`,
    `${r.seconds.toFixed(1)} s`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
  const line = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i] as number)).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line), '', `seed ${report.seed}: ${report.clean ? 'clean' : `${report.findings.length} finding(s)`}`].join('\n');
}
