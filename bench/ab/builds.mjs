#!/usr/bin/env node
// Two builds of OpenDPS and bare aedes over TLS, each in a process of its own, driven in turn by
// `opendps loadgen` (MQTT/TLS, a symmetric-key group) in another process: the same workload as
// `pnpm bench`, with a second OpenDPS build alongside, so that a change is measured before and after
// in the same run on a shared machine (docs/benchmarks.md §3). Server CPU is utime + stime from
// /proc/PID/stat around each client run, divided by the registrations.
//
//   node bench/ab/builds.mjs --before DIR --after DIR [--count 1500] [--concurrency 50] [--rounds 3]
//
// DIR is a checkout with its workspace installed and built (`pnpm install`, `pnpm -s build`), e.g.
// `git worktree add /tmp/before <commit>`. The client, the baseline and the certificate are those of
// --after; each OpenDPS has its own data directory and development CA.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    before: { type: 'string' },
    after: { type: 'string' },
    count: { type: 'string', default: '1500' },
    concurrency: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '3' },
  },
});
if (!values.before || !values.after) {
  console.error('usage: node bench/ab/builds.mjs --before DIR --after DIR [--count N] [--concurrency C] [--rounds R]');
  process.exit(2);
}
const count = Number(values.count);
const concurrency = Number(values.concurrency);
const rounds = Number(values.rounds);
const after = path.resolve(values.after);
const require = createRequire(path.join(after, 'packages/loadgen/dist/bench.js'));
const { CLI } = require('./opendps-process.js');
const { spawnUntil, processCpuMs } = require('./processes-os.js');
const { createServiceClient, symmetricKeyAttestation } = require('./service-client.js');
const work = mkdtempSync(path.join(tmpdir(), 'opendps-ab-'));

async function startOpenDps(root) {
  const dataDir = mkdtempSync(path.join(work, 'data-'));
  const cli = path.join(path.resolve(root), 'packages/server/dist/cli.js');
  const ports = ['--https-port', '0', '--mqtt-port', '0', '--amqp-port', '0', '--hub-port', '0'];
  const server = await spawnUntil([cli, 'start', '--data-dir', dataDir, '--host', 'localhost', ...ports], (line) => line.includes('ready'));
  const connection = JSON.parse(readFileSync(path.join(dataDir, 'connection.json'), 'utf8'));
  const groupKey = randomBytes(32).toString('base64');
  const service = createServiceClient({ connectionString: connection.serviceConnectionString, endpoint: connection.endpoints.https, ca: readFileSync(connection.caFile) });
  await service.putEnrollmentGroup('bench', {
    enrollmentGroupId: 'bench',
    attestation: symmetricKeyAttestation(groupKey, randomBytes(32).toString('base64')),
    provisioningStatus: 'enabled',
  });
  const mqtt = connection.endpoints.mqtt;
  return { process: server, port: mqtt.slice(mqtt.lastIndexOf(':') + 1), idScope: connection.idScope, ca: connection.caFile, groupKey, dataDir };
}

const targets = new Map();
let run = 0;
async function drive(name, n, c) {
  const target = targets.get(name);
  run += 1;
  const json = path.join(work, `run-${run}.json`);
  const before = processCpuMs(target.process.child.pid);
  const client = await spawnUntil(
    [CLI, 'loadgen', '--id-scope', target.idScope, '--host', 'localhost', '--port', target.port, '--ca', target.ca, '--transport', 'mqtt',
      '--group-key', target.groupKey, '--prefix', `r${run}-`, '--count', String(n), '--concurrency', String(c), '--progress-interval', '3600', '--json', json],
    (line) => line.includes('"type":"summary"'),
    { timeoutMs: 600_000 },
  );
  await client.stop();
  const cpuMs = processCpuMs(target.process.child.pid) - before;
  const summary = JSON.parse(readFileSync(json, 'utf8'));
  return { succeeded: summary.succeeded, failed: summary.failed, elapsedMs: summary.elapsedMs, cpuMs };
}

try {
  targets.set('before', await startOpenDps(values.before));
  targets.set('after', await startOpenDps(after));
  const { dataDir } = targets.get('after');
  const aedes = await spawnUntil(
    [path.join(after, 'packages/loadgen/dist/baseline-server.js'), 'mqtt', path.join(dataDir, 'server.pem'), path.join(dataDir, 'server-key.pem')],
    (line) => line.startsWith('{"port"'),
  );
  targets.set('aedes', { process: aedes, port: String(JSON.parse(aedes.line).port), idScope: '0ne0000BA5E', ca: targets.get('after').ca, groupKey: randomBytes(32).toString('base64') });
  const order = ['aedes', 'before', 'after'];
  for (const name of order) await drive(name, 200, 10);
  const totals = new Map(order.map((name) => [name, { succeeded: 0, elapsedMs: 0, cpuMs: 0, attempted: 0 }]));
  for (let round = 1; round <= rounds; round += 1) {
    for (const name of order) {
      const figures = await drive(name, count, concurrency);
      const total = totals.get(name);
      total.succeeded += figures.succeeded;
      total.elapsedMs += figures.elapsedMs;
      total.cpuMs += figures.cpuMs;
      total.attempted += count;
      console.log(`round ${round} ${name.padEnd(6)} ${figures.succeeded}/${count} (${figures.failed} failed) ${(figures.succeeded / (figures.elapsedMs / 1000)).toFixed(1)}/s, server CPU ${(figures.cpuMs / count).toFixed(2)} ms/reg`);
    }
  }
  const rate = (name) => totals.get(name).succeeded / (totals.get(name).elapsedMs / 1000);
  const cpu = (name) => totals.get(name).cpuMs / totals.get(name).attempted;
  for (const name of order) {
    console.log(`${name.padEnd(6)} ${rate(name).toFixed(1)} reg/s (x${(rate(name) / rate('aedes')).toFixed(2)}), server CPU ${cpu(name).toFixed(2)} ms/reg (x${(cpu(name) / cpu('aedes')).toFixed(2)})`);
  }
} finally {
  for (const target of targets.values()) await target.process.stop();
  rmSync(work, { recursive: true, force: true });
}
