/**
 * Trap 13: the SDK's MqttWs and Http transports force port 443 (device-protocols.md §5, §7). Here
 * OpenDPS (the built CLI) listens on 443 itself, and a child process registers with the unmodified
 * transports exactly as an app would: `provisioningHost = 'localhost'`, no injected agent or base,
 * the dev CA trusted only through NODE_EXTRA_CA_CERTS (the machine's global value is overridden).
 * The only suite on port 443 among the device suites; it needs root or CAP_NET_BIND_SERVICE.
 */
import { execFile } from 'node:child_process';
import { generateSymmetricKey } from '@opendps/model';
import { startGateway, type Gateway } from './support/devices';
import { serviceClient } from './support/opendps';

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

let gateway: Gateway;
const key = generateSymmetricKey();

/** Port 443 may be held for a moment by another suite doing the same: wait for it. */
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
