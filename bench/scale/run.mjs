// Registration cost against store size (docs/scale.md). Starts `opendps start` in its own process
// (SQLite, or a private redis-server), seeds the store directly through the store API, then runs
// each phase of registrations from a client process of its own, reading the server's CPU from
// /proc/<pid>/stat around each phase. Then pages through the enrollments with the service API.
//
//   pnpm -s build && node bench/scale/run.mjs --store sqlite --enrollments 1000000 --groups 10000
import { Buffer } from 'node:buffer';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import attestation from '../../attestation/dist/index.js';
import model from '../../packages/model/dist/index.js';
import redisLauncher from '../../packages/loadgen/dist/redis.js';
import storeModule from '../../packages/store/dist/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, arg, i, all) => (arg.startsWith('--') ? [...pairs, [arg.slice(2), all[i + 1]]] : pairs), []),
);
const storeKind = args.store ?? 'sqlite';
const enrollmentCount = Number(args.enrollments ?? 1000);
const groupCount = Number(args.groups ?? 10);
const registrations = Number(args.registrations ?? 500);
/** `--pages all` walks the whole collection (the continuation until none is returned). */
const pagesToWalk = args.pages === 'all' ? Infinity : Number(args.pages ?? 50);
const pageSize = Number(args['page-size'] ?? 100);
const clockTicks = 100; // USER_HZ on Linux

const sharedKey = Buffer.from(randomBytes(32)).toString('base64');
const groupKey = Buffer.from(randomBytes(32)).toString('base64');
/** Sorts after every other group, so a first registration through it tries every group first. */
const targetGroup = 'zz-bench-group';

function log(message) {
  process.stderr.write(`[scale ${storeKind} ${enrollmentCount}/${groupCount}] ${message}\n`);
}

function cpuTicks(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime (fields 14 and 15)
}

function rssKb(pid) {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return Number(line?.split(/\s+/)[1] ?? 0);
}

const dataDir = mkdtempSync(path.join(tmpdir(), 'opendps-scale-'));
const redis = storeKind === 'redis' ? await redisLauncher.startRedis() : undefined;
const serverArgs = [
  path.join(root, 'packages/server/dist/cli.js'), 'start', '--data-dir', dataDir, '--host', 'localhost',
  '--mqtt-port', '0', '--amqp-port', '0', '--https-port', '0', ...(redis ? ['--redis-url', redis.url] : []),
];
let server = spawn(process.execPath, serverArgs, { stdio: ['ignore', 'ignore', 'inherit'] });
const cleanup = async () => {
  server.kill('SIGTERM');
  await redis?.stop();
  rmSync(dataDir, { recursive: true, force: true });
};

/** connection.json, once the server has written it. */
async function started() {
  const connectionFile = path.join(dataDir, 'connection.json');
  const deadline = Date.now() + 60_000;
  while (!existsSync(connectionFile)) {
    if (Date.now() > deadline || server.exitCode !== null) throw new Error('the server did not start');
    await sleep(100);
  }
  await sleep(200);
  return JSON.parse(readFileSync(connectionFile, 'utf8'));
}

try {
  // The first start creates the instance (its ID scope); the store is seeded while no server runs
  // (SQLite allows one writer), then the server starts again on the seeded store.
  const { idScope } = await started();
  server.kill('SIGTERM');
  await new Promise((resolve) => server.once('exit', resolve));
  rmSync(path.join(dataDir, 'connection.json'));
  const store = redis ? await storeModule.RedisStore.connect(redis.url) : new storeModule.SqliteStore(path.join(dataDir, 'opendps.db'));
  await seed(store, idScope);
  await store.close();
  server = spawn(process.execPath, serverArgs, { stdio: ['ignore', 'ignore', 'inherit'] });
  const connection = await started();
  const [host, port] = splitHostPort(connection.endpoints.mqtt);

  const phase = async (name, spec) => {
    const before = cpuTicks(server.pid);
    const result = await runClient({ host, port: Number(port), caFile: connection.caFile, idScope, ...spec });
    const ticks = cpuTicks(server.pid) - before;
    // Per attempt: a registration the client counts as failed still cost the server its work.
    const cpuMsPerRegistration = Number(((ticks * 1000) / clockTicks / spec.ids.length).toFixed(2));
    const row = { phase: name, concurrency: spec.concurrency, ...result, serverCpuMsPerRegistration: cpuMsPerRegistration };
    log(JSON.stringify(row));
    return row;
  };
  const individualIds = (count, salt) => Array.from({ length: count }, (_, i) => `dev-${pad((i * 7919 + salt) % enrollmentCount)}`);
  const groupIds = Array.from({ length: Math.min(registrations, 200) }, (_, i) => `gdev-${i}`);

  await phase('warm-up', { ids: individualIds(300, 11), key: sharedKey, concurrency: 8 });
  const rows = [
    await phase('individual', { ids: individualIds(registrations, 1), key: sharedKey, concurrency: 1 }),
    await phase('individual', { ids: individualIds(registrations * 4, 2), key: sharedKey, concurrency: 16 }),
    await phase('group, first registration', { ids: groupIds, groupKey, concurrency: 1 }),
    await phase('group, again', { ids: groupIds, groupKey, concurrency: 1 }),
    // A key no group has: every key of every group is tried before the 401 (primaries, then secondaries).
    await phase('group, unknown key (401)', { ids: groupIds.slice(0, 100).map((id) => `stranger-${id}`), groupKey: Buffer.from(randomBytes(32)).toString('base64'), concurrency: 1 }),
  ];
  const paging = await walkPages(connection, idScope);
  const report = { store: storeKind, enrollments: enrollmentCount, groups: groupCount, rows, paging, serverRssKb: rssKb(server.pid) };
  process.stdout.write(`${JSON.stringify(report)}\n`);
} finally {
  await cleanup();
}

function pad(n) {
  return String(n).padStart(7, '0');
}

function splitHostPort(endpoint) {
  const at = endpoint.lastIndexOf(':');
  return [endpoint.slice(0, at), endpoint.slice(at + 1)];
}

/** Through the store API, as the server writes them, in batches (not through the service API). */
async function seed(store, idScope) {
  const started = performance.now();
  const now = model.utcNow();
  const enrollments = store.collection(idScope, storeModule.COLLECTIONS.enrollments);
  const batch = 2000;
  for (let from = 0; from < enrollmentCount; from += batch) {
    const writes = [];
    for (let i = from; i < Math.min(enrollmentCount, from + batch); i++) {
      const registrationId = `dev-${pad(i)}`;
      const value = {
        registrationId,
        attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: sharedKey, secondaryKey: sharedKey } },
        provisioningStatus: 'enabled',
        createdDateTimeUtc: now,
        lastUpdatedDateTimeUtc: now,
      };
      writes.push(enrollments.put(registrationId, value, { indexes: { [storeModule.INDEXES.thumbprint]: [] } }));
    }
    await Promise.all(writes);
    if (from % 100_000 === 0) log(`seeded ${from} enrollments`);
  }
  const groups = storeModule.enrollmentGroups(store, idScope);
  for (let i = 0; i < groupCount; i++) {
    const last = i === groupCount - 1;
    const key = last ? groupKey : Buffer.from(randomBytes(32)).toString('base64');
    await groups.put({
      enrollmentGroupId: last ? targetGroup : `group-${pad(i)}`,
      attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: Buffer.from(randomBytes(32)).toString('base64') } },
      provisioningStatus: 'enabled',
      createdDateTimeUtc: now,
    });
  }
  log(`seeded ${enrollmentCount} enrollments and ${groupCount} groups in ${Math.round(performance.now() - started)} ms`);
}

function runClient(spec) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(here, 'client.mjs'), JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`the client exited ${code}`))));
  });
}

/**
 * The service API's enrollment query, `pagesToWalk` pages of `pageSize` from the start, then one page from
 * the middle (a continuation after the middle id): time per page and the server's RSS around it.
 */
async function walkPages(connection, idScope) {
  const fields = model.parseConnectionString(connection.serviceConnectionString);
  const [host, port] = splitHostPort(connection.endpoints.https);
  const agent = new https.Agent({ keepAlive: true, ca: readFileSync(connection.caFile), maxSockets: 1 });
  const query = (continuation) =>
    new Promise((resolve, reject) => {
      const token = attestation.createSasToken({ resource: fields.HostName, key: fields.SharedAccessKey, keyName: fields.SharedAccessKeyName, expiry: Math.floor(Date.now() / 1000) + 3600, encodeResource: true });
      const body = JSON.stringify({ query: '*' });
      const started = performance.now();
      const request = https.request(
        {
          host, port: Number(port), agent, method: 'POST', path: '/enrollments/query?api-version=2021-10-01',
          headers: {
            authorization: token, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-ms-max-item-count': String(pageSize),
            ...(continuation ? { 'x-ms-continuation': continuation } : {}),
          },
        },
        (response) => {
          const chunks = [];
          response.on('data', (chunk) => chunks.push(chunk));
          response.on('end', () => {
            const items = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            if (response.statusCode !== 200) return reject(new Error(`query answered ${response.statusCode}`));
            resolve({ items: items.length, ms: performance.now() - started, continuation: response.headers['x-ms-continuation'] });
          });
        },
      );
      request.on('error', reject);
      request.end(body);
    });
  const rssBefore = rssKb(server.pid);
  const times = [];
  let continuation;
  let items = 0;
  let rssMaxKb = rssBefore;
  const rssSamplesKb = [];
  for (let page = 0; page < pagesToWalk; page++) {
    const answer = await query(continuation);
    times.push(answer.ms);
    items += answer.items;
    if (page % 100 === 0) rssMaxKb = Math.max(rssMaxKb, rssKb(server.pid));
    // The RSS over a long walk, to tell a plateau (bounded) from a climb with the pages read.
    if (page % 1000 === 999) rssSamplesKb.push(rssKb(server.pid) - rssBefore);
    continuation = answer.continuation;
    if (!continuation) break;
  }
  // The token format is the store's (paging.ts); built here only to start in the middle.
  const middle = Buffer.from(JSON.stringify({ after: `dev-${pad(Math.floor(enrollmentCount / 2))}` })).toString('base64url');
  const fromMiddle = await query(middle);
  times.sort((a, b) => a - b);
  agent.destroy();
  void idScope;
  return {
    pages: times.length,
    pageSize,
    items,
    rssMaxGrowthKb: rssMaxKb - rssBefore,
    rssGrowthEvery1000PagesKb: rssSamplesKb,
    p50Ms: Number(times[Math.floor(times.length / 2)].toFixed(2)),
    maxMs: Number(times[times.length - 1].toFixed(2)),
    middlePageMs: Number(fromMiddle.ms.toFixed(2)),
    middlePageItems: fromMiddle.items,
    rssGrowthKb: rssKb(server.pid) - rssBefore,
  };
}
