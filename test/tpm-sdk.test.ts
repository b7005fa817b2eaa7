/**
 * TPM attestation end to end with the unmodified SDK: `azure-iot-security-tpm` over tss.js, on a real
 * TPM 2.0 (swtpm/libtpms) reached through the mssim bridge (support/tpm-bridge.ts), registering over
 * Http and Amqp with `azure-iot-provisioning-device` against the composed server (createServer, every
 * port 0), then connecting to its hub with the key its TPM imported (TpmAuthenticationProvider).
 * AmqpWs: the SDK (1.9.1) dials wss://host:443 for TPM whatever its `webSocketAgent` option says (shown
 * below); with that one agent filled in (support/tpm-device.js) TPM over AMQP/WebSocket completes too.
 * tpm2-tools then read the same TPM: its EK is the one the SDK reported, and the ID key it persisted
 * signs with the hub device's primary key. The server answers every register with 202, so the SDK's
 * polls are authenticated too.
 */
import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import path from 'node:path';
import { tpm } from '@opendps/attestation';
import type { ProvisioningServiceClient } from 'azure-iot-provisioning-service';
import { tpmChallenges } from '@opendps/registration';
import { startSwtpm, type Swtpm } from '../attestation/test/tpm/fixtures/swtpm';
import { portOf, rawHttps } from './support/devices';
import { serviceClient, startOpenDps, type OpenDps } from './support/opendps';
import { startTpmBridge, type TpmBridge } from './support/tpm-bridge';

const DEVICE = path.join(__dirname, 'support', 'tpm-device.js');
const ID_KEY_HANDLE = '0x81000100';

let dps: OpenDps;
let service: ProvisioningServiceClient;
let swtpm: Swtpm;
let bridge: TpmBridge;
let keys: { endorsementKey: string; storageRootKey: string; registrationId: string };

interface DeviceOutput {
  endorsementKey?: string;
  storageRootKey?: string;
  registrationId?: string;
  result?: { operationId: string; status: string; registrationState: Record<string, unknown> & { tpm?: { authenticationKey?: string } } };
  hub?: { connected: boolean; sent: boolean };
  error?: { name: string; message: string };
  /** AmqpWs: each config the transport handed its AMQP base. */
  connects?: { uri: string; saslMechanismName?: string; webSocketAgent: boolean; error: { name?: string; message: string; code?: string } | null }[];
}

function runDevice(options: Record<string, unknown>): Promise<DeviceOutput> {
  const env = { ...process.env, NODE_EXTRA_CA_CERTS: dps.server.caFile, OPENDPS_CA: dps.ca };
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [DEVICE, JSON.stringify({ tpmPort: bridge.port, idScope: dps.connection.idScope, ...options })], { env, timeout: 45_000 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`device process failed: ${error.message}\n${stderr}`));
      try {
        resolve(JSON.parse(stdout) as DeviceOutput);
      } catch {
        reject(new Error(`device process printed no JSON: ${stdout}\n${stderr}`));
      }
    });
  });
}

const hub = () => dps.server.hubs.get('hub-1')!;

/** The operation was persisted in flight (the 202 path, so the SDK polled), and K1 is gone after the final answer. */
async function expectPolledAndK1Discarded(operationId: string | undefined): Promise<void> {
  const { store, connection } = dps.server;
  expect(await store.collection(connection.idScope, 'operations').get(operationId ?? '')).toBeDefined();
  expect(await tpmChallenges(store, connection.idScope).get(keys.registrationId)).toBeUndefined();
}
async function hubKey(deviceId: string): Promise<string> {
  const auth = (await hub().getDevice(deviceId))?.identity.authentication;
  if (auth?.type !== 'sas') throw new Error(`no SAS identity for ${deviceId} at the hub`);
  return auth.symmetricKey.primaryKey;
}

/** TPM2_HMAC with the persistent ID key, by tpm2-tools (the bridge must let go of swtpm first). */
async function tpmHmac(message: string): Promise<Buffer> {
  await bridge.release();
  const { writeFileSync, readFileSync } = await import('node:fs');
  writeFileSync(path.join(swtpm.dir, 'msg.bin'), message);
  await swtpm.run('tpm2_hmac', ['-c', ID_KEY_HANDLE, '-g', 'sha256', '-o', 'mac.bin', 'msg.bin']);
  return readFileSync(path.join(swtpm.dir, 'mac.bin'));
}

beforeAll(async () => {
  // Every registration answers 202 and the device polls, as on real DPS: the polls (HTTPS: the bare
  // K1-signed SAS; AMQP: the SASL TPM proof) must authenticate with the answered challenge.
  const previous = process.env.OPENDPS_ANSWER_WITHIN_MS;
  process.env.OPENDPS_ANSWER_WITHIN_MS = '0';
  try {
    swtpm = await startSwtpm();
    dps = await startOpenDps();
  } finally {
    if (previous === undefined) delete process.env.OPENDPS_ANSWER_WITHIN_MS;
    else process.env.OPENDPS_ANSWER_WITHIN_MS = previous;
  }
  bridge = await startTpmBridge(swtpm.port);
  service = serviceClient(dps.connection.serviceConnectionString, dps.connection.endpoints.https, dps.ca);
}, 60_000);

afterAll(async () => {
  await bridge?.close();
  await swtpm?.stop();
  await dps?.stop();
});

test('the SDK creates its EK and SRK in the TPM; tpm2-tools read the same EK, and the default registration id is ours', async () => {
  const output = await runDevice({ mode: 'keys' });
  expect(output.error).toBeUndefined();
  keys = output as typeof keys;
  expect(Buffer.from(keys.endorsementKey, 'base64')).toHaveLength(316);
  expect(Buffer.from(keys.storageRootKey, 'base64')).toHaveLength(284);
  expect(keys.registrationId).toBe(tpm.registrationIdFromEndorsementKey(keys.endorsementKey));
  expect(bridge.commands).toBeGreaterThan(3);

  await bridge.release();
  await swtpm.run('tpm2_readpublic', ['-c', '0x81010001', '-o', 'ek.tpm2b']);
  const { readFileSync } = await import('node:fs');
  expect(readFileSync(path.join(swtpm.dir, 'ek.tpm2b')).toString('base64')).toBe(keys.endorsementKey);

  await service.createOrUpdateIndividualEnrollment({
    registrationId: keys.registrationId,
    attestation: { type: 'tpm', tpm: { endorsementKey: keys.endorsementKey } },
    initialTwin: { properties: { desired: { attested: 'tpm' } } },
  } as never);
}, 60_000);

test('the HTTPS 401 challenge on the wire: exactly 401, authenticationKey, keyName and message first; refusals carry no blob', async () => {
  const put = (registrationId: string, authorization?: string) =>
    rawHttps({
      port: portOf(dps.connection.endpoints.https),
      ca: dps.ca,
      method: 'PUT',
      path: `/${dps.connection.idScope}/registrations/${registrationId}/register?api-version=2019-03-31`,
      headers: { 'content-type': 'application/json; charset=utf-8', ...(authorization ? { authorization } : {}) },
      body: JSON.stringify({ registrationId, tpm: { endorsementKey: keys.endorsementKey, storageRootKey: keys.storageRootKey } }),
    });
  const challenge = await put(keys.registrationId);
  expect(challenge.status).toBe(401);
  expect(challenge.headers['content-type']).toContain('application/json');
  expect(Object.keys(challenge.json ?? {}).slice(0, 3)).toEqual(['authenticationKey', 'keyName', 'message']);
  expect(challenge.json).toMatchObject({ keyName: 'registration', errorCode: 401000 });
  const blob = Buffer.from(challenge.json?.authenticationKey as string, 'base64');
  // Fields 1-5 (796 bytes) and the TPM2B_DATA the Node SDK requires (docs/device-wire.md, trap 15), here the encrypted URI.
  const uri = `${dps.connection.idScope}/registrations/${keys.registrationId}`;
  expect(blob).toHaveLength(798 + uri.length);
  expect(tpm.parseActivationBlob(blob).encryptedUri).toHaveLength(2 + uri.length);

  for (const refused of [await put('tpm-nobody'), await put(keys.registrationId, 'SharedAccessSignature sr=x&sig=y&se=1&skn=registration')]) {
    expect(refused.status).toBe(401);
    expect(refused.json?.authenticationKey).toBeUndefined();
    expect(refused.json?.keyName).toBeUndefined();
  }
});

test('Http: 401 challenge, the TPM-signed SAS, assigned with the second blob; the device connects to its hub with the key its TPM imported', async () => {
  const before = hub().telemetryCount(keys.registrationId);
  const output = await runDevice({ mode: 'register', transport: 'http', host: 'localhost', port: portOf(dps.connection.endpoints.https) });
  expect(output.error).toBeUndefined();
  // register() resolves with the whole operation status for TPM (docs/device-wire.md, trap 16), carrying blob(K2) (docs/device-wire.md, trap 15).
  expect(output.result).toMatchObject({ status: 'assigned', registrationState: { registrationId: keys.registrationId, deviceId: keys.registrationId, assignedHub: dps.connection.endpoints.hubs[0], status: 'assigned' } });
  expect(typeof output.result?.registrationState.tpm?.authenticationKey).toBe('string');
  expect(output.hub).toEqual({ connected: true, sent: true });
  expect(hub().telemetryCount(keys.registrationId)).toBe(before + 1);
  await expectPolledAndK1Discarded(output.result?.operationId);

  // The key the TPM persisted at 0x81000100 is the hub device's primary key (K2), not K1.
  const key = await hubKey(keys.registrationId);
  const expected = createHmac('sha256', Buffer.from(key, 'base64')).update('opendps').digest();
  expect((await tpmHmac('opendps')).equals(expected)).toBe(true);
}, 60_000);

test('Amqp: SASL TPM challenge and SAS on one connection; re-registration to the same hub re-wraps the same hub key', async () => {
  const keyBefore = await hubKey(keys.registrationId);
  const before = hub().telemetryCount(keys.registrationId);
  const output = await runDevice({ mode: 'register', transport: 'amqp', host: 'localhost', port: portOf(dps.connection.endpoints.amqp) });
  expect(output.error).toBeUndefined();
  expect(output.result).toMatchObject({ status: 'assigned', registrationState: { registrationId: keys.registrationId, status: 'assigned' } });
  expect(typeof output.result?.registrationState.tpm?.authenticationKey).toBe('string');
  expect(output.hub).toEqual({ connected: true, sent: true });
  expect(hub().telemetryCount(keys.registrationId)).toBe(before + 1);
  await expectPolledAndK1Discarded(output.result?.operationId);
  expect(await hubKey(keys.registrationId)).toBe(keyBefore);
  const expected = createHmac('sha256', Buffer.from(keyBefore, 'base64')).update('again').digest();
  expect((await tpmHmac('again')).equals(expected)).toBe(true);
}, 60_000);

test('AmqpWs, unmodified: the TPM SASL connection ignores the webSocketAgent option and dials wss://localhost:443, so register() never settles', async () => {
  const challenges = tpmChallenges(dps.server.store, dps.connection.idScope);
  const before = hub().telemetryCount(keys.registrationId);
  const output = await runDevice({ mode: 'register', transport: 'amqpws', host: 'localhost', port: portOf(dps.connection.endpoints.https), timeoutMs: 4000 });
  // amqp.js _getAuthChallenge: config {uri: _getConnectionUri(request), saslMechanismName, saslMechanism, userAgentString},
  // no sslOptions; AmqpWs._getConnectionUri is 'wss://' + host + ':443/$iothub/websocket'. Only the SAS/X.509 state
  // (connectingX509OrSymmetricKey) sets sslOptions.agent = webSocketAgent.
  expect(output.connects).toEqual([
    { uri: 'wss://localhost:443/$iothub/websocket', saslMechanismName: 'TPM', webSocketAgent: false, error: expect.objectContaining({ message: expect.any(String) }) },
  ]);
  // connectingTpm drops that connection error (no listener before respondToAuthenticationChallenge): no callback.
  expect(output.error).toMatchObject({ name: 'Timeout' });
  expect(output.result).toBeUndefined();
  expect(await challenges.get(keys.registrationId)).toBeUndefined();
  expect(hub().telemetryCount(keys.registrationId)).toBe(before);
}, 30_000);

test('AmqpWs with the webSocketAgent handed to the TPM connection too: SASL TPM over AMQPWSB10 on the HTTPS port, assigned, the hub key re-wrapped', async () => {
  const keyBefore = await hubKey(keys.registrationId);
  const before = hub().telemetryCount(keys.registrationId);
  const output = await runDevice({ mode: 'register', transport: 'amqpws', host: 'localhost', port: portOf(dps.connection.endpoints.https), tpmWebSocketAgent: true });
  expect(output.error).toBeUndefined();
  // One connection carries the challenge, the SAS and the polls: the transport's URI, the agent filled in.
  expect(output.connects).toEqual([{ uri: 'wss://localhost:443/$iothub/websocket', saslMechanismName: 'TPM', webSocketAgent: false, error: null }]);
  expect(output.result).toMatchObject({ status: 'assigned', registrationState: { registrationId: keys.registrationId, deviceId: keys.registrationId, assignedHub: dps.connection.endpoints.hubs[0], status: 'assigned' } });
  expect(typeof output.result?.registrationState.tpm?.authenticationKey).toBe('string');
  expect(output.hub).toEqual({ connected: true, sent: true });
  expect(hub().telemetryCount(keys.registrationId)).toBe(before + 1);
  await expectPolledAndK1Discarded(output.result?.operationId);
  expect(await hubKey(keys.registrationId)).toBe(keyBefore);
  const expected = createHmac('sha256', Buffer.from(keyBefore, 'base64')).update('over websocket').digest();
  expect((await tpmHmac('over websocket')).equals(expected)).toBe(true);
}, 60_000);

test('a TPM whose EK is not enrolled under the registration id it claims gets no challenge, on either transport', async () => {
  await service.createOrUpdateIndividualEnrollment({
    registrationId: 'tpm-someone-else',
    attestation: { type: 'tpm', tpm: { endorsementKey: swapModulusByte(keys.endorsementKey) } },
  } as never);
  const challenges = tpmChallenges(dps.server.store, dps.connection.idScope);
  // Http: the 401 carries no authenticationKey, which the SDK reports as a FormatError.
  const http = await runDevice({ mode: 'register', transport: 'http', host: 'localhost', port: portOf(dps.connection.endpoints.https), registrationId: 'tpm-someone-else' });
  expect(http.error).toMatchObject({ name: 'FormatError' });
  expect(http.result).toBeUndefined();
  // Amqp: SASL outcome auth before any challenge; the SDK (1.9.1) never settles register() then
  // (connectingTpm drops the connection error), so the device gives up after its own timeout.
  const amqp = await runDevice({ mode: 'register', transport: 'amqp', host: 'localhost', port: portOf(dps.connection.endpoints.amqp), registrationId: 'tpm-someone-else', timeoutMs: 4000 });
  expect(amqp.error).toMatchObject({ name: 'Timeout' });
  expect(amqp.result).toBeUndefined();
  expect(await challenges.get('tpm-someone-else')).toBeUndefined();
  expect(await hub().getDevice('tpm-someone-else')).toBeUndefined();
}, 60_000);

/** Another valid-looking EK: the same template with one modulus byte changed. */
function swapModulusByte(endorsementKey: string): string {
  const bytes = Buffer.from(endorsementKey, 'base64');
  bytes[bytes.length - 10] = (bytes[bytes.length - 10]! ^ 0xff) & 0xff;
  return bytes.toString('base64');
}
