/**
 * Port 443, as on Azure, for the SDK paths that cannot be pointed anywhere else. OpenDPS (the built
 * CLI) listens on 443 itself and child processes use the unmodified SDKs exactly as an app would,
 * the dev CA trusted only through NODE_EXTRA_CA_CERTS (the machine's global value is overridden):
 * - docs/device-wire.md, trap 13: the device MqttWs and Http transports force port 443 (docs/device-wire.md §5, §7);
 * - option A of docs/service-rest.md §9: `ProvisioningServiceClient.fromConnectionString(cs)`, nothing injected;
 * - TPM over AmqpWs: the SDK (1.9.1) dials wss://<host>:443/$iothub/websocket for its TPM SASL connection
 *   whatever `webSocketAgent` says (tpm-sdk.test.ts), so on 443 the unmodified path completes.
 * The only suite on port 443; it needs root or CAP_NET_BIND_SERVICE.
 */
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { tpm } from '@opendps/attestation';
import { generateSymmetricKey } from '@opendps/model';
import { startSwtpm, type Swtpm } from '../attestation/test/tpm/fixtures/swtpm';
import { startGateway, type Gateway } from './support/devices';
import { serviceClient } from './support/opendps';
import { startTpmBridge, type TpmBridge } from './support/tpm-bridge';

/** Runs in the child: the unmodified SDK with its default transports and nothing pointed anywhere. */
const DEVICE_SCRIPT = `
const { ProvisioningDeviceClient } = require('azure-iot-provisioning-device');
const { MqttWs } = require('azure-iot-provisioning-device-mqtt');
const { Http } = require('azure-iot-provisioning-device-http');
const { SymmetricKeySecurityClient } = require('azure-iot-security-symmetric-key');
const [transport, idScope, registrationId, key] = process.argv.slice(1);
const client = ProvisioningDeviceClient.create('localhost', idScope, transport === 'mqttws' ? new MqttWs() : new Http(), new SymmetricKeySecurityClient(registrationId, key));
client.register().then(
  (result) => console.log(JSON.stringify({ result })),
  (error) => console.log(JSON.stringify({ error: { name: error.name, message: error.message, code: error.code || (error.cause && error.cause.code) } })),
);
`;

interface DeviceRun {
  result?: { registrationId?: string; status?: string; assignedHub?: string; deviceId?: string };
  error?: { name?: string; message?: string; code?: string };
}

function runDevice(transport: 'mqttws' | 'http', registrationId: string, key: string, caFile: string | undefined): Promise<DeviceRun> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['-e', DEVICE_SCRIPT, transport, gateway.connection.idScope, registrationId, key],
      // cwd: the interop package, whose node_modules hold the SDK packages.
      { cwd: __dirname, env: { PATH: process.env.PATH, ...(caFile ? { NODE_EXTRA_CA_CERTS: caFile } : {}) }, timeout: 25_000 },
      (error, stdout, stderr) => {
        if (error) return reject(new Error(`the device process failed: ${error.message}\n${stderr}`));
        try {
          resolve(JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as DeviceRun);
        } catch {
          reject(new Error(`the device process printed no result: ${stdout}\n${stderr}`));
        }
      },
    );
  });
}

/** Runs in the SDK child: create, read, read the attestation mechanism; prints one JSON line. */
const SERVICE_SCRIPT = `
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
    const child = spawn(process.execPath, ['-e', SERVICE_SCRIPT], { cwd: __dirname, env, stdio: ['ignore', 'pipe', 'pipe'] });
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

let gateway: Gateway;
const key = generateSymmetricKey();

/** Port 443 may still be held for a moment by a server that is shutting down: wait for it. */
async function startOn443(): Promise<Gateway> {
  const deadline = Date.now() + 45_000;
  for (;;) {
    try {
      return await startGateway([], {}, { httpsPort: 443 });
    } catch (error) {
      if (!/EADDRINUSE/.test(String(error)) || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

beforeAll(async () => {
  gateway = await startOn443();
  expect(gateway.connection.endpoints.https).toBe('localhost:443');
  const service = serviceClient(gateway.connection.serviceConnectionString, gateway.connection.endpoints.https, gateway.ca);
  for (const registrationId of ['port443-mqttws', 'port443-http', 'port443-untrusted']) {
    await service.createOrUpdateIndividualEnrollment({
      registrationId,
      attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: generateSymmetricKey() } },
    } as never);
  }
}, 60_000);

afterAll(() => gateway?.stop());

test.each(['mqttws', 'http'] as const)('%s registers on localhost:443 with no agent, trusting the dev CA through NODE_EXTRA_CA_CERTS', async (transport) => {
  const run = await runDevice(transport, `port443-${transport}`, key, gateway.connection.caFile);
  expect(run.error).toBeUndefined();
  expect(run.result).toMatchObject({
    registrationId: `port443-${transport}`,
    status: 'assigned',
    deviceId: `port443-${transport}`,
    assignedHub: gateway.connection.endpoints.hubs[0],
  });
});

test('without the dev CA the same Http registration is refused by TLS (the CA is what made it work)', async () => {
  const run = await runDevice('http', 'port443-untrusted', key, '/etc/ssl/certs/ca-certificates.crt');
  expect(run.result).toBeUndefined();
  expect(`${run.error?.code} ${run.error?.message}`).toMatch(/SELF_SIGNED|self.signed|UNABLE_TO_VERIFY|unable to verify/i);
});

describe('the unmodified service SDK with fromConnectionString (option A)', () => {
  it('creates and reads an enrollment with only NODE_EXTRA_CA_CERTS pointing at the dev CA', async () => {
    expect(gateway.connection.endpoints.https).toBe('localhost:443');
    expect(gateway.connection.serviceConnectionString).toMatch(/^HostName=localhost;/);
    const env = { PATH: process.env.PATH, DPS_CS: gateway.connection.serviceConnectionString, DPS_ID: 'option-a-1' };

    const run = await runSdk({ ...env, NODE_EXTRA_CA_CERTS: gateway.connection.caFile });
    expect(run).toMatchObject({ ok: true, created: { registrationId: 'option-a-1' }, read: { registrationId: 'option-a-1' } });
    expect(run.read?.etag).toBe(run.created?.etag);
    expect(run.mechanism?.symmetricKey?.primaryKey).toBe(run.created?.attestation.symmetricKey?.primaryKey);
    expect(Buffer.from(run.mechanism?.symmetricKey?.primaryKey ?? '', 'base64')).toHaveLength(64);

    // What the SDK wrote is on the server: read it back through another client (option B).
    const ca = readFileSync(gateway.connection.caFile, 'utf8');
    const read = (await serviceClient(gateway.connection.serviceConnectionString, gateway.connection.endpoints.https, ca).getIndividualEnrollment('option-a-1')).responseBody;
    expect(read.etag).toBe(run.created?.etag);
  });

  it('fails the TLS handshake without the dev CA (the system bundle alone)', async () => {
    const systemBundle = process.env.NODE_EXTRA_CA_CERTS;
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, DPS_CS: gateway.connection.serviceConnectionString, DPS_ID: 'option-a-2' };
    if (systemBundle && systemBundle !== gateway.connection.caFile) env.NODE_EXTRA_CA_CERTS = systemBundle;
    const run = await runSdk(env);
    expect(run.ok).toBe(false);
    expect(run.code).toMatch(/CERT|UNABLE_TO_VERIFY/);
  });
});

describe('TPM over the unmodified AmqpWs transport (azure-iot-security-tpm on swtpm)', () => {
  const TPM_DEVICE = path.join(__dirname, 'support', 'tpm-device.js');
  let swtpm: Swtpm | undefined;
  let bridge: TpmBridge | undefined;

  interface TpmDeviceOutput {
    endorsementKey?: string;
    storageRootKey?: string;
    registrationId?: string;
    result?: { status: string; registrationState: Record<string, unknown> & { tpm?: { authenticationKey?: string } } };
    hub?: { connected: boolean; sent: boolean };
    error?: { name: string; message: string };
    connects?: { uri: string; saslMechanismName?: string; webSocketAgent: boolean; error: unknown }[];
  }

  /** support/tpm-device.js with only PATH and NODE_EXTRA_CA_CERTS: no OPENDPS_CA, so every TLS trust comes from the dev CA file. */
  function runTpmDevice(options: Record<string, unknown>): Promise<TpmDeviceOutput> {
    const env = { PATH: process.env.PATH, NODE_EXTRA_CA_CERTS: gateway.connection.caFile };
    const args = [TPM_DEVICE, JSON.stringify({ tpmPort: bridge?.port, idScope: gateway.connection.idScope, ...options })];
    return new Promise((resolve, reject) => {
      execFile(process.execPath, args, { cwd: __dirname, env, timeout: 45_000 }, (error, stdout, stderr) => {
        if (error) return reject(new Error(`the TPM device process failed: ${error.message}\n${stderr}`));
        try {
          resolve(JSON.parse(stdout) as TpmDeviceOutput);
        } catch {
          reject(new Error(`the TPM device process printed no JSON: ${stdout}\n${stderr}`));
        }
      });
    });
  }

  beforeAll(async () => {
    swtpm = await startSwtpm();
    bridge = await startTpmBridge(swtpm.port);
  }, 60_000);

  afterAll(async () => {
    await bridge?.close();
    await swtpm?.stop();
  });

  test('AmqpWs with no webSocketAgent for TPM: SASL TPM on wss://localhost:443, assigned with the TPM blob, then hub connect and telemetry', async () => {
    const keys = await runTpmDevice({ mode: 'keys' });
    expect(keys.error).toBeUndefined();
    expect(keys.registrationId).toBe(tpm.registrationIdFromEndorsementKey(keys.endorsementKey ?? ''));
    const registrationId = keys.registrationId ?? '';
    const service = serviceClient(gateway.connection.serviceConnectionString, gateway.connection.endpoints.https, gateway.ca);
    await service.createOrUpdateIndividualEnrollment({ registrationId, attestation: { type: 'tpm', tpm: { endorsementKey: keys.endorsementKey } } } as never);

    const output = await runTpmDevice({ mode: 'register', transport: 'amqpws', host: 'localhost', port: 443 });
    expect(output.error).toBeUndefined();
    // The SDK's own URI and no agent: nothing but port 443 and NODE_EXTRA_CA_CERTS made this connection work.
    expect(output.connects).toEqual([{ uri: 'wss://localhost:443/$iothub/websocket', saslMechanismName: 'TPM', webSocketAgent: false, error: null }]);
    expect(output.result).toMatchObject({
      status: 'assigned',
      registrationState: { registrationId, deviceId: registrationId, assignedHub: gateway.connection.endpoints.hubs[0], status: 'assigned' },
    });
    expect(typeof output.result?.registrationState.tpm?.authenticationKey).toBe('string');
    expect(output.hub).toEqual({ connected: true, sent: true });

    const state = (await service.getDeviceRegistrationState(registrationId)).responseBody as { status?: string; deviceId?: string };
    expect(state).toMatchObject({ status: 'assigned', deviceId: registrationId });
  }, 90_000);
});
