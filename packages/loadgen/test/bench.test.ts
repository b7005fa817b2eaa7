import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseBenchArgs, UsageError } from '../src/bench';

/** `pnpm bench` end to end on a tiny round (the built dist: run `pnpm -s build` first). Structure only. */
const BENCH = path.resolve(__dirname, '..', 'dist', 'bench.js');

it('runs every transport against OpenDPS and its baselines, each in its own process, and prints the table with ratios', async () => {
  const work = mkdtempSync(path.join(tmpdir(), 'bench-test-'));
  try {
    const json = path.join(work, 'bench.json');
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [BENCH, '--count', '20', '--count-at-1', '3', '--rounds', '1', '--warmup', '3', '--json', json],
      { timeout: 170_000 },
    );
    const lines = stdout.trim().split('\n');
    expect(lines[0]?.split(/\s{2,}/)).toEqual(['transport', 'conc', 'target', 'reg/s', 'p50 ms', 'p99 ms', 'srv CPU ms/reg', 'client CPU ms/reg', 'client cores', 'x rate', 'x p50', 'x CPU']);
    const rows = lines.slice(2).map((line) => line.trim().split(/\s+/));
    // 5 transports x concurrency 1 and 50 x (baseline, OpenDPS on SQLite)
    expect(rows).toHaveLength(20);
    for (const row of rows) {
      const [transport, concurrency, target, rate, , , , , , xRate] = row;
      expect(['mqtt', 'mqtt-ws', 'amqp', 'amqp-ws', 'https']).toContain(transport);
      expect(['1', '50']).toContain(concurrency);
      expect(['baseline', 'opendps-sqlite']).toContain(target);
      expect(Number(rate)).toBeGreaterThan(0);
      if (target === 'baseline') expect(xRate).toBe('-');
      else expect(Number(xRate)).toBeGreaterThan(0);
    }
    const report = JSON.parse(readFileSync(json, 'utf8')) as { rows: Array<{ figures: { succeeded: number; failed: number } }>; failures: string[] };
    expect(report.failures).toEqual([]);
    expect(report.rows.every((row) => row.figures.failed === 0 && row.figures.succeeded > 0)).toBe(true);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}, 180_000);

it('benchmarks OpenDPS on Redis too, trusting each server by its own CA', async () => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [BENCH, '--store', 'both', '--transports', 'https', '--concurrency', '1', '--count-at-1', '2', '--rounds', '1', '--warmup', '2'],
    { timeout: 100_000 },
  );
  const targets = stdout.trim().split('\n').slice(2).map((line) => line.trim().split(/\s+/)[2]);
  expect(targets).toEqual(['baseline', 'opendps-sqlite', 'opendps-redis']);
  expect(stdout).not.toContain('registrations failed');
}, 120_000);

it('refuses a transport it does not know, and shows its usage on --help', () => {
  expect(() => parseBenchArgs(['--transports', 'mqtt,carrier-pigeon'])).toThrow(UsageError);
  expect(() => parseBenchArgs(['--help'])).toThrow(UsageError);
  expect(parseBenchArgs([])).toMatchObject({ concurrencies: [1, 50], stores: ['sqlite'], rounds: 2 });
});
