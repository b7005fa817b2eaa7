import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { startBaselineBroker, type BaselineBroker } from './baseline';
import { groupDerivedKeys, runDeviceFleet, type DpsTarget, type FleetResult } from './fleet';
import type { DeviceResult } from './device';
import { startOpenDps, type StoreKind } from './opendps';
import { symmetricKeyAttestation } from './service-client';
import { ratio, ratePerSecond, summarizeLatencies, type LatencySummary } from './stats';
import { createLoopbackTls, type LoopbackTls } from './tls';

/**
 * `pnpm bench`: symmetric-key registrations over MQTT/TLS against OpenDPS (SQLite and/or Redis), each
 * next to a bare TLS aedes broker measured in the same run with the same client code, alternating
 * baseline and OpenDPS rounds to spread machine noise over both. Prints figures; asserts no timing.
 */
export interface BenchOptions {
  count: number;
  concurrency: number;
  stores: StoreKind[];
  /** Measured rounds per target (baseline, opendps, baseline, opendps, …). */
  rounds: number;
  /** Registrations per target before measuring (JIT, caches, connection pools). */
  warmup: number;
  /** Size of the extra pass with individual enrollments; 0 skips it. */
  individual: number;
  timeoutMs: number;
}

export interface BenchFigures {
  succeeded: number;
  failed: number;
  perSecond: number;
  latency: LatencySummary;
}

export interface BenchRow {
  store: StoreKind;
  enrollment: 'group' | 'individual';
  count: number;
  concurrency: number;
  opendps?: BenchFigures;
  baseline: BenchFigures;
  /** OpenDPS reg/s over baseline reg/s, both from this run. */
  ratio: number;
  note?: string;
}

export interface BenchReport {
  rows: BenchRow[];
  failures: string[];
}

type Log = (line: string) => void;

export async function runBenchmark(options: BenchOptions, log: Log = () => undefined): Promise<BenchReport> {
  const tls = createLoopbackTls();
  const baseline = await startBaselineBroker({ cert: tls.cert, key: tls.key, assignedHub: 'baseline.invalid' });
  const rows: BenchRow[] = [];
  const failures: string[] = [];
  try {
    for (const store of options.stores) {
      rows.push(...(await benchStore(store, options, tls, baseline, failures, log)));
    }
  } finally {
    await baseline.close();
  }
  return { rows, failures };
}

async function benchStore(
  store: StoreKind,
  options: BenchOptions,
  tls: LoopbackTls,
  baseline: BaselineBroker,
  failures: string[],
  log: Log,
): Promise<BenchRow[]> {
  const baselineTarget: DpsTarget = { host: baseline.host, port: baseline.port, ca: tls.ca, idScope: '0ne0000BASE' };
  const run = (label: string, target: DpsTarget, deviceKey: (id: string) => string, prefix: string, count: number) =>
    runDeviceFleet({ target, deviceKey, count, concurrency: options.concurrency, prefix, timeoutMs: options.timeoutMs }).then(
      (result) => {
        log(`  ${label.padEnd(30)} ${describe(result)}`);
        for (const failure of result.failures.slice(0, 5)) failures.push(`${store} ${label}: ${failure.message}`);
        if (result.failed > 5) failures.push(`${store} ${label}: … and ${result.failed - 5} more`);
        return result;
      },
    );

  log(`${store}: starting OpenDPS`);
  const dps = await startOpenDps({ store });
  const dpsTarget = dps.target;
  if (!dpsTarget) {
    await dps.stop();
    // Still measure the floor, so the run says something useful while the listener is missing.
    const note = 'this OpenDPS build runs no DPS MQTT listener (connection.json endpoints.mqtt is null)';
    log(`${store}: ${note}; measuring the baseline alone`);
    const keys = groupDerivedKeys(randomKey());
    await run('baseline warm-up', baselineTarget, keys, `warm-${store}-`, options.warmup);
    const measured = [];
    for (let round = 1; round <= options.rounds; round += 1) {
      measured.push(await run(`baseline round ${round}`, baselineTarget, keys, `base-${store}-r${round}-`, options.count));
    }
    return [{ store, enrollment: 'group', count: options.count, concurrency: options.concurrency, baseline: combine(measured), ratio: Number.NaN, note }];
  }

  try {
    const groupKey = randomKey();
    const groupId = `loadgen-${store}`;
    await dps.service.putEnrollmentGroup(groupId, {
      enrollmentGroupId: groupId,
      attestation: symmetricKeyAttestation(groupKey, randomKey()),
      provisioningStatus: 'enabled',
    });
    const keys = groupDerivedKeys(groupKey);
    log(`${store}: enrollment group '${groupId}' created; warming up`);
    await run('baseline warm-up', baselineTarget, keys, `warm-${store}-`, options.warmup);
    await run('opendps warm-up', dpsTarget, keys, `warm-${store}-`, options.warmup);

    const baselineRuns: Array<FleetResult<DeviceResult>> = [];
    const dpsRuns: Array<FleetResult<DeviceResult>> = [];
    for (let round = 1; round <= options.rounds; round += 1) {
      baselineRuns.push(await run(`baseline round ${round}`, baselineTarget, keys, `base-${store}-r${round}-`, options.count));
      dpsRuns.push(await run(`opendps group round ${round}`, dpsTarget, keys, `grp-${store}-r${round}-`, options.count));
    }
    const rows: BenchRow[] = [row(store, 'group', options, options.count, dpsRuns, baselineRuns)];

    if (options.individual > 0) {
      const count = options.individual;
      const individualKeys = new Map<string, string>();
      log(`${store}: creating ${count} individual enrollments through the service API`);
      await runPool(count, 8, async (index) => {
        const registrationId = `ind-${store}-${index}`;
        const key = randomKey();
        individualKeys.set(registrationId, key);
        await dps.service.putEnrollment(registrationId, {
          registrationId,
          attestation: symmetricKeyAttestation(key, randomKey()),
          provisioningStatus: 'enabled',
        });
      });
      const ownKey = (id: string) => individualKeys.get(id) ?? '';
      const base = [await run('baseline individual', baselineTarget, ownKey, `ind-${store}-`, count)];
      const mine = [await run('opendps individual', dpsTarget, ownKey, `ind-${store}-`, count)];
      rows.push(row(store, 'individual', options, count, mine, base));
    }
    return rows;
  } finally {
    await dps.stop();
  }
}

function row(
  store: StoreKind,
  enrollment: BenchRow['enrollment'],
  options: BenchOptions,
  count: number,
  dpsRuns: Array<FleetResult<DeviceResult>>,
  baselineRuns: Array<FleetResult<DeviceResult>>,
): BenchRow {
  const opendps = combine(dpsRuns);
  const baseline = combine(baselineRuns);
  return { store, enrollment, count, concurrency: options.concurrency, opendps, baseline, ratio: ratio(opendps.perSecond, baseline.perSecond) };
}

/** Rounds pooled: all successes over all elapsed time, percentiles over every latency. */
export function combine(runs: ReadonlyArray<FleetResult<{ latencyMs: number }>>): BenchFigures {
  const succeeded = runs.reduce((sum, run) => sum + run.succeeded, 0);
  const elapsedMs = runs.reduce((sum, run) => sum + run.elapsedMs, 0);
  return {
    succeeded,
    failed: runs.reduce((sum, run) => sum + run.failed + run.notStarted, 0),
    perSecond: ratePerSecond(succeeded, elapsedMs),
    latency: summarizeLatencies(runs.flatMap((run) => run.results.map((result) => result.latencyMs))),
  };
}

export function formatTable(rows: readonly BenchRow[]): string {
  const header = ['store', 'enrollment', 'count', 'conc', 'reg/s', 'p50 ms', 'p99 ms', 'base reg/s', 'base p50', 'base p99', 'ratio'];
  const fixed = (value: number | undefined, digits: number) => (value === undefined || Number.isNaN(value) ? '-' : value.toFixed(digits));
  const lines = rows.map((r) => [
    r.store,
    r.enrollment,
    String(r.count),
    String(r.concurrency),
    fixed(r.opendps?.perSecond, 1),
    fixed(r.opendps?.latency.p50, 1),
    fixed(r.opendps?.latency.p99, 1),
    fixed(r.baseline.perSecond, 1),
    fixed(r.baseline.latency.p50, 1),
    fixed(r.baseline.latency.p99, 1),
    fixed(r.ratio, 2),
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...lines.map((line) => (line[column] ?? '').length)));
  const render = (cells: string[]) => cells.map((cell, column) => cell.padStart(widths[column] ?? 0)).join('  ');
  return [render(header), render(widths.map((width) => '-'.repeat(width))), ...lines.map(render)].join('\n');
}

function describe(result: FleetResult<{ latencyMs: number }>): string {
  const failed = result.failed + result.notStarted;
  return (
    `${result.succeeded}/${result.count} in ${(result.elapsedMs / 1000).toFixed(2)} s: ` +
    `${result.perSecond.toFixed(1)} reg/s, p50 ${result.latency.p50.toFixed(1)} ms, p99 ${result.latency.p99.toFixed(1)} ms` +
    (failed ? `, ${failed} FAILED` : '')
  );
}

async function runPool(count: number, concurrency: number, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

function randomKey(): string {
  return randomBytes(32).toString('base64');
}

export const USAGE = `usage: node packages/loadgen/dist/bench.js [--count N] [--concurrency C] [--store sqlite|redis|both]
       [--rounds R] [--warmup W] [--individual M] [--timeout-ms T]
  --count N         registrations per measured round (default 2000)
  --concurrency C   devices in flight (default 50)
  --store S         sqlite, redis or both (default both)
  --rounds R        measured rounds per target, alternating baseline and OpenDPS (default 2)
  --warmup W        registrations per target before measuring (default min(200, N))
  --individual M    an extra pass over M individual enrollments (default min(200, N); 0 skips)
  --timeout-ms T    per-device deadline (default 30000)`;

export function parseBenchArgs(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      count: { type: 'string' },
      concurrency: { type: 'string' },
      store: { type: 'string' },
      rounds: { type: 'string' },
      warmup: { type: 'string' },
      individual: { type: 'string' },
      'timeout-ms': { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) throw new UsageError('');
  const integer = (name: string, text: string | undefined, fallback: number, min: number, max: number) => {
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!/^\d+$/.test(text) || value < min || value > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got '${text}'.`);
    return value;
  };
  const count = integer('count', values.count, 2000, 1, 1_000_000);
  const store = values.store ?? 'both';
  if (!['sqlite', 'redis', 'both'].includes(store)) throw new UsageError(`--store must be sqlite, redis or both, got '${store}'.`);
  return {
    count,
    concurrency: integer('concurrency', values.concurrency, 50, 1, 5000),
    stores: store === 'both' ? ['sqlite', 'redis'] : [store as StoreKind],
    rounds: integer('rounds', values.rounds, 2, 1, 20),
    warmup: integer('warmup', values.warmup, Math.min(200, count), 1, 1_000_000),
    individual: integer('individual', values.individual, Math.min(200, count), 0, 100_000),
    timeoutMs: integer('timeout-ms', values['timeout-ms'], 30_000, 100, 600_000),
  };
}

export class UsageError extends Error {}

async function main(): Promise<number> {
  let options: BenchOptions;
  try {
    options = parseBenchArgs(process.argv.slice(2));
  } catch (error) {
    const message = (error as Error).message;
    process.stderr.write(`${message ? `${message}\n` : ''}${USAGE}\n`);
    return message ? 2 : 0;
  }
  const log: Log = (line) => process.stderr.write(`${line}\n`);
  log(`OpenDPS registration benchmark: ${options.count} symmetric-key registrations x ${options.rounds} rounds, concurrency ${options.concurrency}, MQTT/TLS, node ${process.version}`);
  const report = await runBenchmark(options, log);
  process.stdout.write(`\n${formatTable(report.rows)}\n`);
  for (const row of report.rows) if (row.note) process.stdout.write(`note (${row.store}): ${row.note}\n`);
  if (report.failures.length) {
    process.stdout.write(`\nregistrations failed:\n${report.failures.map((line) => `  ${line}`).join('\n')}\n`);
    return 1;
  }
  return 0;
}

if (require.main === module) {
  main().then(
    (code) => (process.exitCode = code),
    (error: unknown) => {
      process.stderr.write(`benchmark failed: ${(error as Error).stack ?? String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
