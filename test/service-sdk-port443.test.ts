/**
 * Option A of service-api.md §9: the unmodified service SDK exactly as an application uses it,
 * `ProvisioningServiceClient.fromConnectionString(cs)` with nothing injected, against the `opendps`
 * CLI listening on port 443, the dev CA trusted through NODE_EXTRA_CA_CERTS. Both the server and the
 * SDK run as child processes (the variable is read at process start; the machine sets it globally to
 * the system bundle, which the SDK child overrides). Needs the built CLI (`npx tsc -b`) and root.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ConnectionInfo } from '@opendps/server';
import { serviceClient } from './support/opendps';

const ROOT = path.resolve(__dirname, '..');
const CLI = path.join(ROOT, 'packages/server/dist/cli.js');

/** Runs in the SDK child: create, read, read the attestation mechanism; prints one JSON line. */
const SDK_SCRIPT = `
const { ProvisioningServiceClient } = require('azure-iot-provisioning-service');
const client = ProvisioningServiceClient.fromConnectionString(process.env.DPS_CS);
const registrationId = process.env.DPS_ID;
(async () => {
  try {
    const created = (await client.createOrUpdateIndividualEnrollment({ registrationId, attestation: { type: 'symmetricKey' } })).responseBody;
    const read = (await client.getIndividualEnrollment(registrationId)).responseBody;
    const mechanism = (await client.getIndividualEnrollmentAttestationMechanism(registrationId)).responseBody;
    console.log(JSON.stringify({ ok: true, created, read, mechanism }));
  } catch (error) {
    console.log(JSON.stringify({ ok: false, name: error.name, code: error.code, message: error.message }));
  }
})();
`;

interface SdkRun {
  ok: boolean;
  code?: string;
  created?: { registrationId: string; etag: string; attestation: { symmetricKey?: { primaryKey?: string } } };
  read?: { registrationId: string; etag: string };
  mechanism?: { symmetricKey?: { primaryKey?: string } };
}

function runSdk(env: NodeJS.ProcessEnv): Promise<SdkRun> {
  return new Promise((resolve, reject) => {
    // cwd test/: require() finds the SDK in this package's node_modules.
    const child = spawn(process.execPath, ['-e', SDK_SCRIPT], { cwd: __dirname, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('exit', () => {
      const line = stdout.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as SdkRun);
      } catch {
        reject(new Error(`The SDK child printed no result: ${stdout} ${stderr}`));
      }
    });
  });
}

describe('the unmodified service SDK with fromConnectionString against port 443 (option A)', () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'opendps-443-'));
  let server: ChildProcess | undefined;
  let connection: ConnectionInfo;

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npx tsc -b' first.`);
    const started = spawn(
      process.execPath,
      [CLI, 'start', '--data-dir', dataDir, '--https-port', '443', '--mqtt-port', '0', '--amqp-port', '0', '--hub-port', '0'],
      { cwd: ROOT, env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    server = started;
    let output = '';
    started.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    started.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`opendps start did not get ready: ${output}`)), 20_000);
      const check = () => {
        if (output.includes('ready')) {
          clearTimeout(timer);
          resolve();
        }
      };
      started.stdout.on('data', check);
      started.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`opendps start exited with ${code}: ${output}`));
      });
    });
    connection = JSON.parse(readFileSync(path.join(dataDir, 'connection.json'), 'utf8')) as ConnectionInfo;
  });

  afterAll(async () => {
    const running = server;
    if (running && running.exitCode === null && running.signalCode === null) {
      await new Promise((resolve) => {
        running.once('exit', resolve);
        running.kill('SIGTERM');
      });
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('creates and reads an enrollment with only NODE_EXTRA_CA_CERTS pointing at the dev CA', async () => {
    expect(connection.endpoints.https).toBe('localhost:443');
    expect(connection.serviceConnectionString).toMatch(/^HostName=localhost;/);
    const env = { PATH: process.env.PATH, DPS_CS: connection.serviceConnectionString, DPS_ID: 'option-a-1' };

    const run = await runSdk({ ...env, NODE_EXTRA_CA_CERTS: connection.caFile });
    expect(run).toMatchObject({ ok: true, created: { registrationId: 'option-a-1' }, read: { registrationId: 'option-a-1' } });
    expect(run.read?.etag).toBe(run.created?.etag);
    expect(run.mechanism?.symmetricKey?.primaryKey).toBe(run.created?.attestation.symmetricKey?.primaryKey);
    expect(Buffer.from(run.mechanism?.symmetricKey?.primaryKey ?? '', 'base64')).toHaveLength(64);

    // What the SDK wrote is on the server: read it back through another client (option B).
    const ca = readFileSync(connection.caFile, 'utf8');
    const read = (await serviceClient(connection.serviceConnectionString, connection.endpoints.https, ca).getIndividualEnrollment('option-a-1')).responseBody;
    expect(read.etag).toBe(run.created?.etag);
  });

  it('fails the TLS handshake without the dev CA (the system bundle alone)', async () => {
    const systemBundle = process.env.NODE_EXTRA_CA_CERTS;
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, DPS_CS: connection.serviceConnectionString, DPS_ID: 'option-a-2' };
    if (systemBundle && systemBundle !== connection.caFile) env.NODE_EXTRA_CA_CERTS = systemBundle;
    const run = await runSdk(env);
    expect(run.ok).toBe(false);
    expect(run.code).toMatch(/CERT|UNABLE_TO_VERIFY/);
  });
});
