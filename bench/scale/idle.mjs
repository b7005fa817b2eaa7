// The cost of an idle MQTT connection (docs/scale.md): `opendps start` in its own process (with
// memory-hook.cjs preloaded), a client process holding `--warm` connections, then another holding
// `--connections` more, all CONNECTed and SUBSCRIBEd. The server's heap (after GC) and RSS are read
// with each batch held; the difference divided by the connections is the cost of one.
//   --attestation sas|x509   SAS of a symmetric-key group (default), or a device certificate
//                            issued by the dev CA to each device, for an X.509 group
//   --register               each device registers (until assigned) before it idles
//   --server bare            the reference: a bare node:tls server (idle-bare-server.mjs) instead
//                            of OpenDPS, same key type, answering CONNECT and SUBSCRIBE blindly
//
//   pnpm -s build && node bench/scale/idle.mjs --connections 10000 [--attestation x509] [--register]
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import model from '../../packages/model/dist/index.js';
import pki from '../../packages/pki/dist/index.js';
import storeModule from '../../packages/store/dist/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
/** Options without a value; every other option takes the next argument, even one starting with `--`. */
const FLAGS = new Set(['register']);
const args = {};
for (let i = 2; i < process.argv.length; i++) {
  const name = process.argv[i].replace(/^--/, '');
  args[name] = FLAGS.has(name) ? 'true' : process.argv[++i];
}
const attestationKind = args.attestation ?? 'sas';
if (attestationKind !== 'sas' && attestationKind !== 'x509') throw new Error('--attestation is sas or x509');
const register = args.register === 'true';
/** Each process may open as many descriptors as its hard limit allows (10,000 connections need more than 1,024). */
const withDescriptors = (argv) => ['-c', 'ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"', process.execPath, ...argv];
const bare = args.server === 'bare';
if (args.server !== undefined && !bare) throw new Error('--server is bare (or absent: OpenDPS)');
if (bare && register) throw new Error('the bare server does not register devices');
const connections = Number(args.connections ?? 10_000);
const warm = Number(args.warm ?? 500);
const groupKey = randomBytes(32).toString('base64');
const dataDir = mkdtempSync(path.join(tmpdir(), 'opendps-idle-'));
const memoryFile = path.join(dataDir, 'memory.json');

if (bare) {
  // The same key type as OpenDPS's dev PKI (P-256 by default); the CA also signs X.509 devices.
  const ca = pki.createRootCa({ commonName: 'idle bare CA' });
  const leaf = pki.createServerCertificate(ca, ['localhost']);
  for (const [name, pem] of [['ca.pem', ca.certificatePem], ['ca-key.pem', ca.privateKeyPem], ['server.pem', leaf.certificatePem], ['server-key.pem', leaf.privateKeyPem]]) {
    writeFileSync(path.join(dataDir, name), pem);
  }
}
const nodeOptions = args['node-options'] ? args['node-options'].split(' ') : [];
const server = spawn(
  '/bin/sh',
  withDescriptors([
    '--expose-gc', '--require', path.join(here, 'memory-hook.cjs'), ...nodeOptions,
    ...(bare
      ? [path.join(here, 'idle-bare-server.mjs'), dataDir]
      : [
          path.join(root, 'packages/server/dist/cli.js'), 'start', '--data-dir', dataDir, '--host', 'localhost',
          '--mqtt-port', '0', '--amqp-port', '0', '--https-port', '0', '--mqtt-request-timeout-ms', '3600000', '--log-level', args['log-level'] ?? 'warn',
        ]),
  ]),
  { stdio: ['ignore', args['log-level'] ? 'inherit' : 'ignore', 'inherit'], cwd: dataDir, env: { ...process.env, OPENDPS_MEMORY_FILE: memoryFile } },
);
const clients = [];

async function memory() {
  rmSync(memoryFile, { force: true });
  server.kill('SIGUSR2');
  const deadline = Date.now() + 30_000;
  while (!existsSync(memoryFile)) {
    if (Date.now() > deadline) throw new Error('the server wrote no memory figures');
    await sleep(50);
  }
  const usage = JSON.parse(readFileSync(memoryFile, 'utf8'));
  const status = readFileSync(`/proc/${server.pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return { heapUsed: usage.heapUsed, external: usage.external, arrayBuffers: usage.arrayBuffers, rss: rssKb * 1024 };
}

/** A signing certificate as the service API stores it: with the info the group's indexes are built from. */
function signingCertificate(pem) {
  const parsed = model.parseCertificate(pem);
  return { certificate: parsed.pem, info: model.certificateInfo(parsed) };
}

/**
 * With `--heap-snapshot MS`, one snapshot before the batch and one with it held (written by the
 * server, --heapsnapshot-signal=SIGUSR1 in --node-options, into its working directory), for
 * heap-diff.mjs to compare.
 */
async function snapshot() {
  if (!args['heap-snapshot']) return;
  server.kill('SIGUSR1');
  await sleep(Number(args['heap-snapshot']));
}

function hold(spec) {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', withDescriptors([path.join(here, 'idle-client.mjs'), JSON.stringify(spec)]), { stdio: ['ignore', 'pipe', 'inherit'] });
    clients.push(child);
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const match = /held (\d+) (\d+)/.exec(out);
      if (match) resolve({ held: Number(match[1]), failed: Number(match[2]) });
    });
    child.on('exit', (code) => reject(new Error(`the idle client exited ${code}`)));
  });
}

try {
  const connectionFile = path.join(dataDir, 'connection.json');
  const deadline = Date.now() + 60_000;
  while (!existsSync(connectionFile)) {
    if (Date.now() > deadline || server.exitCode !== null) throw new Error('the server did not start');
    await sleep(100);
  }
  await sleep(200);
  const connection = JSON.parse(readFileSync(connectionFile, 'utf8'));
  // The dev CA (it signed the server's certificate) also signs the devices' certificates here.
  const devCa = { caCertFile: path.join(dataDir, 'ca.pem'), caKeyFile: path.join(dataDir, 'ca-key.pem') };
  if (!bare) {
    const store = new storeModule.SqliteStore(path.join(dataDir, 'opendps.db'));
    await storeModule.enrollmentGroups(store, connection.idScope).put({
      enrollmentGroupId: 'idle-devices',
      attestation:
        attestationKind === 'x509'
          ? { type: 'x509', x509: { signingCertificates: { primary: signingCertificate(readFileSync(devCa.caCertFile, 'utf8')) } } }
          : { type: 'symmetricKey', symmetricKey: { primaryKey: groupKey, secondaryKey: groupKey } },
    });
    await store.close();
  }
  const at = connection.endpoints.mqtt.lastIndexOf(':');
  const spec = {
    host: connection.endpoints.mqtt.slice(0, at),
    port: Number(connection.endpoints.mqtt.slice(at + 1)),
    caFile: connection.caFile,
    idScope: connection.idScope,
    key: groupKey,
    attestation: attestationKind,
    register,
    ...devCa,
  };

  const warmed = await hold({ ...spec, count: warm, prefix: 'warm' });
  await sleep(1000);
  const before = await memory();
  await snapshot();
  const held = await hold({ ...spec, count: connections, prefix: 'idle' });
  await sleep(2000);
  const after = await memory();
  await snapshot();
  const per = (field) => Math.round((after[field] - before[field]) / held.held);
  const report = {
    server: bare ? 'bare node:tls' : 'opendps',
    attestation: attestationKind,
    register,
    warm: warmed,
    held,
    before,
    after,
    perConnectionBytes: { heapUsed: per('heapUsed'), external: per('external'), rss: per('rss') },
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
} finally {
  for (const child of clients) child.kill('SIGTERM');
  server.kill('SIGTERM');
  await sleep(500);
  if (!args['heap-snapshot']) rmSync(dataDir, { recursive: true, force: true });
  else process.stderr.write(`heap snapshot left in ${dataDir}\n`);
}
