import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { BaselineKind } from './baselines';
import { TRANSPORTS, type Transport } from './clients/types';
import { CLI, startOpenDpsProcess, type OpenDpsProcess, type StoreKind } from './opendps-process';
import { processCpuMs, spawnUntil, type Spawned } from './processes-os';
import { symmetricKeyAttestation, createServiceClient } from './service-client';
import { percentile, ratio } from './stats';

/**
 * `pnpm bench`: OpenDPS against the bare library each front-end is built on, per transport, at
 * concurrency 1 and 50. Every server runs in a process of its own and the client (`opendps loadgen`)
 * in another, so no stall of one is hidden in the other; baseline and OpenDPS runs alternate within
 * each round. Server CPU comes from /proc/PID/stat deltas around each client run. Prints figures;
 * asserts none.
 */
export interface BenchOptions {
  transports: Transport[];
  stores: StoreKind[];
  concurrencies: number[];
  /** Registrations per run at concurrency 1, and at every other concurrency. */
  countAt1: number;
  count: number;
  rounds: number;
  warmup: number;
  processes: number;
}

export interface Figures {
  succeeded: number;
  failed: number;
  rate: number;
  p50: number;
  p99: number;
  /** Server (and its redis-server) CPU per successful registration. */
  serverCpuMsPerReg: number;
  /** The client's own CPU per registration: near 1 core's worth means the client was the ceiling. */
  clientCpuMsPerReg: number;
  /** Client CPU over wall time (1.0 = one core busy). */
  clientCores: number;
}

export interface BenchRow {
  transport: Transport;
  concurrency: number;
  target: string;
  figures: Figures;
  /** OpenDPS over baseline: rate, p50 and CPU per registration. Absent on baseline rows. */
  ratios?: { rate: number; p50: number; cpu: number };
}

export interface BenchReport {
  rows: BenchRow[];
  failures: string[];
}

type Log = (line: string) => void;

const BASELINE_OF: Record<Transport, BaselineKind> = { mqtt: 'mqtt', 'mqtt-ws': 'ws', amqp: 'amqp', 'amqp-ws': 'ws', https: 'https' };
const BASELINE_SCOPE = '0ne0000BA5E';

interface Target {
  name: string;
  idScope: string;
  ports: Record<'mqtt' | 'amqp' | 'https', number> | ((transport: Transport) => number);
  pids: number[];
  groupKey: string;
  /** Each OpenDPS has its own development CA; the baselines serve the first one's certificate. */
  caFile: string;
}

export async function runBenchmark(options: BenchOptions, log: Log = () => undefined): Promise<BenchReport> {
  const work = mkdtempSync(path.join(tmpdir(), 'opendps-bench-'));
  const servers: OpenDpsProcess[] = [];
  const baselines = new Map<BaselineKind, Spawned>();
  const failures: string[] = [];
  try {
    // OpenDPS first: the baselines serve its own certificate and key, so the TLS cost is the same.
    const targets: Target[] = [];
    for (const store of options.stores) {
      log(`starting OpenDPS (${store}) in its own process`);
      const dps = await startOpenDpsProcess({ store });
      servers.push(dps);
      const { connection } = dps;
      const groupKey = randomBytes(32).toString('base64');
      const ca = readFileSync(connection.caFile);
      await createServiceClient({ connectionString: connection.serviceConnectionString, endpoint: connection.endpoints.https, ca }).putEnrollmentGroup('bench', {
        enrollmentGroupId: 'bench',
        attestation: symmetricKeyAttestation(groupKey, randomBytes(32).toString('base64')),
        provisioningStatus: 'enabled',
      });
      const port = (endpoint: string | null) => Number(endpoint?.slice(endpoint.lastIndexOf(':') + 1));
      targets.push({
        name: `opendps-${store}`,
        idScope: connection.idScope,
        ports: { mqtt: port(connection.endpoints.mqtt), amqp: port(connection.endpoints.amqp), https: port(connection.endpoints.https) },
        pids: dps.pids,
        groupKey,
        caFile: connection.caFile,
      });
    }
    const first = servers[0];
    if (!first) throw new Error('no store to benchmark');
    const cert = path.join(first.dataDir, 'server.pem');
    const key = path.join(first.dataDir, 'server-key.pem');
    const caFile = first.connection.caFile;
    for (const kind of new Set(options.transports.map((transport) => BASELINE_OF[transport]))) {
      log(`starting the ${kind} baseline in its own process`);
      baselines.set(kind, await spawnUntil([path.join(__dirname, 'baseline-server.js'), kind, cert, key], (line) => line.startsWith('{"port"')));
    }
    const baselineTarget: Target = {
      name: 'baseline',
      idScope: BASELINE_SCOPE,
      ports: (transport) => (JSON.parse(baselines.get(BASELINE_OF[transport])?.line ?? '{}') as { port: number }).port,
      pids: [],
      groupKey: randomBytes(32).toString('base64'),
      caFile,
    };
    const baselinePids = (transport: Transport) => [baselines.get(BASELINE_OF[transport])?.child.pid].filter((pid): pid is number => pid !== undefined);

    const rows: BenchRow[] = [];
    let run = 0;
    const client = async (target: Target, transport: Transport, concurrency: number, count: number): Promise<RunFigures> => {
      run += 1;
      const port = typeof target.ports === 'function' ? target.ports(transport) : target.ports[transport === 'mqtt' ? 'mqtt' : transport === 'amqp' ? 'amqp' : 'https'];
      const pids = target === baselineTarget ? baselinePids(transport) : target.pids;
      const csv = path.join(work, `run-${run}.csv`);
      const json = path.join(work, `run-${run}.json`);
      const before = pids.map(processCpuMs);
      const child = await spawnUntil(
        [
          CLI, 'loadgen', '--id-scope', target.idScope, '--host', 'localhost', '--port', String(port), '--ca', target.caFile,
          '--transport', transport, '--group-key', target.groupKey, '--prefix', `b${run}-`, '--count', String(count),
          '--concurrency', String(concurrency), '--processes', String(options.processes), '--json', json, '--csv', csv, '--progress-interval', '3600',
        ],
        (line) => line.includes('"type":"summary"'),
        { timeoutMs: 600_000 },
      );
      await child.stop();
      const after = pids.map(processCpuMs);
      const serverCpuMs = after.reduce<number>((sum, value, index) => sum + ((value ?? 0) - (before[index] ?? 0)), 0);
      return readRun(json, csv, serverCpuMs);
    };

    for (const transport of options.transports) {
      const order = [baselineTarget, ...targets];
      log(`${transport}: warming up`);
      for (const target of order) await client(target, transport, Math.min(10, options.warmup), options.warmup);
      for (const concurrency of options.concurrencies) {
        const count = concurrency === 1 ? options.countAt1 : options.count;
        const runs = new Map<string, RunFigures[]>();
        for (let round = 1; round <= options.rounds; round += 1) {
          for (const target of order) {
            const figures = await client(target, transport, concurrency, count);
            if (figures.failed) failures.push(`${transport} c${concurrency} ${target.name} round ${round}: ${figures.failed} failed ${JSON.stringify(figures.errors)}`);
            log(`  ${transport.padEnd(7)} c${String(concurrency).padEnd(3)} ${target.name.padEnd(15)} round ${round}: ${figures.succeeded}/${count}, ${(figures.succeeded / (figures.elapsedMs / 1000)).toFixed(1)}/s, server CPU ${figures.serverCpuMs.toFixed(0)} ms`);
            runs.set(target.name, [...(runs.get(target.name) ?? []), figures]);
          }
        }
        const base = pool(runs.get('baseline') ?? []);
        rows.push({ transport, concurrency, target: 'baseline', figures: base });
        for (const target of targets) {
          const mine = pool(runs.get(target.name) ?? []);
          rows.push({
            transport,
            concurrency,
            target: target.name,
            figures: mine,
            ratios: { rate: ratio(mine.rate, base.rate), p50: ratio(mine.p50, base.p50), cpu: ratio(mine.serverCpuMsPerReg, base.serverCpuMsPerReg) },
          });
        }
      }
    }
    return { rows, failures };
  } finally {
    for (const baseline of baselines.values()) await baseline.stop();
    for (const server of servers) await server.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

interface RunFigures {
  succeeded: number;
  failed: number;
  errors: Record<string, number>;
  elapsedMs: number;
  clientCpuMs: number;
  serverCpuMs: number;
  latencies: number[];
}

function readRun(jsonFile: string, csvFile: string, serverCpuMs: number): RunFigures {
  const summary = JSON.parse(readFileSync(jsonFile, 'utf8')) as { succeeded: number; failed: number; errors: Record<string, number>; elapsedMs: number; clientCpuMs: number };
  const [header = '', ...lines] = readFileSync(csvFile, 'utf8').trim().split('\n');
  const columns = header.split(',');
  const ok = columns.indexOf('ok');
  const assigned = columns.indexOf('assignedMs');
  const latencies = lines.map((line) => line.split(',')).filter((cells) => cells[ok] === 'true').map((cells) => Number(cells[assigned]));
  return { ...summary, serverCpuMs, latencies };
}

/** Rounds pooled: every success over all elapsed time, percentiles over every latency. */
function pool(runs: readonly RunFigures[]): Figures {
  const succeeded = runs.reduce((sum, run) => sum + run.succeeded, 0);
  const elapsedMs = runs.reduce((sum, run) => sum + run.elapsedMs, 0);
  const clientCpuMs = runs.reduce((sum, run) => sum + run.clientCpuMs, 0);
  const serverCpuMs = runs.reduce((sum, run) => sum + run.serverCpuMs, 0);
  const sorted = runs.flatMap((run) => run.latencies).sort((a, b) => a - b);
  return {
    succeeded,
    failed: runs.reduce((sum, run) => sum + run.failed, 0),
    rate: elapsedMs > 0 ? (succeeded * 1000) / elapsedMs : 0,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    serverCpuMsPerReg: succeeded ? serverCpuMs / succeeded : Number.NaN,
    clientCpuMsPerReg: succeeded ? clientCpuMs / succeeded : Number.NaN,
    clientCores: elapsedMs > 0 ? clientCpuMs / elapsedMs : Number.NaN,
  };
}

export function formatTable(rows: readonly BenchRow[]): string {
  const header = ['transport', 'conc', 'target', 'reg/s', 'p50 ms', 'p99 ms', 'srv CPU ms/reg', 'client CPU ms/reg', 'client cores', 'x rate', 'x p50', 'x CPU'];
  const fixed = (value: number | undefined, digits: number) => (value === undefined || Number.isNaN(value) ? '-' : value.toFixed(digits));
  const lines = rows.map((row) => [
    row.transport,
    String(row.concurrency),
    row.target,
    fixed(row.figures.rate, 1),
    fixed(row.figures.p50, 1),
    fixed(row.figures.p99, 1),
    fixed(row.figures.serverCpuMsPerReg, 2),
    fixed(row.figures.clientCpuMsPerReg, 2),
    fixed(row.figures.clientCores, 2),
    fixed(row.ratios?.rate, 2),
    fixed(row.ratios?.p50, 2),
    fixed(row.ratios?.cpu, 2),
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...lines.map((line) => (line[column] ?? '').length)));
  const render = (cells: string[]) => cells.map((cell, column) => (column < 3 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0))).join('  ');
  return [render(header), render(widths.map((width) => '-'.repeat(width))), ...lines.map(render)].join('\n');
}

export const USAGE = `usage: pnpm bench [--transports T,…] [--store sqlite|redis|both] [--concurrency 1,50]
                  [--count N] [--count-at-1 N] [--rounds R] [--warmup W] [--processes P] [--json FILE]
  --transports T   ${TRANSPORTS.join(',')} (default all)
  --store S        sqlite, redis or both (default sqlite)
  --concurrency C  comma-separated concurrencies (default 1,50)
  --count N        registrations per run above concurrency 1 (default 500)
  --count-at-1 N   registrations per run at concurrency 1 (default 50)
  --rounds R       measured rounds, each alternating baseline and OpenDPS (default 2)
  --warmup W       registrations per target and transport before measuring (default 50)
  --processes P    client processes per run (default 1)
  --json FILE      also write the rows as JSON
The client's CPU per registration and cores busy are shown so a client-bound run is visible.`;

export class UsageError extends Error {}

export function parseBenchArgs(argv: string[]): BenchOptions & { json?: string } {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      transports: { type: 'string' },
      store: { type: 'string' },
      concurrency: { type: 'string' },
      count: { type: 'string' },
      'count-at-1': { type: 'string' },
      rounds: { type: 'string' },
      warmup: { type: 'string' },
      processes: { type: 'string' },
      json: { type: 'string' },
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
  const transports = (values.transports ?? TRANSPORTS.join(',')).split(',') as Transport[];
  for (const transport of transports) if (!TRANSPORTS.includes(transport)) throw new UsageError(`--transports: '${transport}' is not one of ${TRANSPORTS.join(', ')}.`);
  const store = values.store ?? 'sqlite';
  if (!['sqlite', 'redis', 'both'].includes(store)) throw new UsageError(`--store must be sqlite, redis or both, got '${store}'.`);
  const concurrencies = (values.concurrency ?? '1,50').split(',').map((text) => integer('concurrency', text, 1, 1, 5000));
  return {
    transports,
    stores: store === 'both' ? ['sqlite', 'redis'] : [store as StoreKind],
    concurrencies,
    count: integer('count', values.count, 500, 1, 1_000_000),
    countAt1: integer('count-at-1', values['count-at-1'], 50, 1, 1_000_000),
    rounds: integer('rounds', values.rounds, 2, 1, 20),
    warmup: integer('warmup', values.warmup, 50, 1, 100_000),
    processes: integer('processes', values.processes, 1, 1, 64),
    ...(values.json ? { json: values.json } : {}),
  };
}

async function main(): Promise<number> {
  let options: ReturnType<typeof parseBenchArgs>;
  try {
    options = parseBenchArgs(process.argv.slice(2));
  } catch (error) {
    const message = (error as Error).message;
    process.stderr.write(`${message ? `${message}\n` : ''}${USAGE}\n`);
    return message ? 2 : 0;
  }
  const log: Log = (line) => process.stderr.write(`${line}\n`);
  log(
    `OpenDPS registration benchmark: ${options.transports.join(', ')}; concurrency ${options.concurrencies.join(', ')}; ` +
      `${options.rounds} rounds; node ${process.version}; every server and the client in processes of their own`,
  );
  const report = await runBenchmark(options, log);
  process.stdout.write(`\n${formatTable(report.rows)}\n`);
  if (options.json) {
    const { writeFileSync } = await import('node:fs');
    writeFileSync(options.json, `${JSON.stringify(report, null, 2)}\n`);
  }
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
