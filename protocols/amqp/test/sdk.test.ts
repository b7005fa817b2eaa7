import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BuiltInHub } from '@opendps/hub';
import { generateSymmetricKey, validateEnrollmentGroup, validateIndividualEnrollment, type ProvisioningInstance } from '@opendps/model';
import { createIntermediateCa, createLeaf, createRootCa, type Issued } from '@opendps/pki';
import { DpsRegistrationService } from '@opendps/registration';
import { SqliteStore, enrollmentGroups, enrollments } from '@opendps/store';
import { WebSocketServer } from 'ws';
import { createDpsAmqpFrontEnd, type DpsAmqpFrontEnd } from '../src';
import { testPki } from './helpers';

const SCOPE = '0ne00000A0A';
const FIXTURE = path.join(__dirname, 'fixtures', 'sdk-device.js');

interface DeviceRun {
  result?: { status?: string; assignedHub?: string; deviceId?: string; registrationId?: string };
  error?: { name?: string; message?: string; condition?: string; description?: string; amqpError?: { condition?: string } };
}

/** The DPS group-derived key (docs/service-rest.md §14): HMAC-SHA256 of the registration id under the group key. */
const deriveKey = (groupKey: string, registrationId: string): string =>
  createHmac('sha256', Buffer.from(groupKey, 'base64')).update(registrationId, 'utf8').digest('base64');

const pem = (...issued: Issued[]): string => issued.map((certificate) => certificate.certificatePem).join('');

/**
 * The unmodified azure-iot-provisioning-device-amqp transports (Amqp, AmqpWs) against this
 * front-end backed by the real registration service, a SQLite store and a built-in hub.
 */
describe('azure-iot-provisioning-device over AMQP and AMQP/WebSocket, real registration service', () => {
  let dir: string;
  let store: SqliteStore;
  let hub: BuiltInHub;
  let frontEnd: DpsAmqpFrontEnd;
  let amqpPort: number;
  let httpsServer: Server;
  let wssPort: number;
  let caFile: string;
  let registration: DpsRegistrationService;

  const individualKey = generateSymmetricKey();
  const groupKey = generateSymmetricKey();
  const deviceRoot = createRootCa({ commonName: 'AMQP device root' });
  const intermediate = createIntermediateCa(deviceRoot, { commonName: 'AMQP device intermediate' });
  const selfSigned = createLeaf(undefined, { commonName: 'x509-individual' });

  beforeAll(async () => {
    const { ca, server } = testPki();
    dir = mkdtempSync(path.join(tmpdir(), 'opendps-amqp-'));
    caFile = path.join(dir, 'ca.pem');
    writeFileSync(caFile, ca.certificatePem);
    store = new SqliteStore(path.join(dir, 'state.db'));
    hub = new BuiltInHub({ name: 'hub-1', host: 'localhost', port: 0, listenAddress: '127.0.0.1', tls: { cert: server.certificatePem, key: server.privateKeyPem }, store });
    await hub.start();
    const instance: ProvisioningInstance = {
      name: 'default',
      idScope: SCOPE,
      serviceHostName: 'localhost',
      policies: [],
      linkedHubs: [{ name: 'hub-1', hostName: hub.hostName, allocationWeight: 1, applyAllocationPolicy: true }],
      allocationPolicy: 'hashed',
    };
    const individuals = enrollments(store, SCOPE);
    const groups = enrollmentGroups(store, SCOPE);
    for (const registrationId of ['sym-amqp', 'sym-amqpws']) {
      await individuals.put(
        validateIndividualEnrollment({ registrationId, attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: individualKey, secondaryKey: generateSymmetricKey() } } }),
      );
    }
    await groups.put(
      validateEnrollmentGroup({ enrollmentGroupId: 'sym-group', attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: groupKey, secondaryKey: generateSymmetricKey() } } }),
    );
    await individuals.put(
      validateIndividualEnrollment({ registrationId: 'x509-individual', attestation: { type: 'x509', x509: { clientCertificates: { primary: { certificate: selfSigned.certificatePem } } } } }),
    );
    await groups.put(
      validateEnrollmentGroup({ enrollmentGroupId: 'x509-group', attestation: { type: 'x509', x509: { signingCertificates: { primary: { certificate: deviceRoot.certificatePem } } } } }),
    );

    // answerWithinMs 0: register answers 202 and the SDK polls after our retry-after.
    registration = new DpsRegistrationService({ store, instances: () => [instance], hubs: { connector: () => hub }, answerWithinMs: 0, retryAfterSeconds: 1 });
    frontEnd = createDpsAmqpFrontEnd({ registration });
    amqpPort = (await frontEnd.listen({ port: 0, host: '127.0.0.1', tls: { cert: server.certificatePem, key: server.privateKeyPem } })).port;

    const wss = new WebSocketServer({ noServer: true, handleProtocols: (protocols) => (protocols.has('AMQPWSB10') ? 'AMQPWSB10' : false) });
    httpsServer = createServer({ cert: server.certificatePem, key: server.privateKeyPem, requestCert: true, rejectUnauthorized: false });
    httpsServer.on('upgrade', (request, socket, head) => {
      if (request.url !== '/$iothub/websocket') return socket.destroy();
      wss.handleUpgrade(request, socket, head, (ws) => frontEnd.handleWebSocket(ws, request));
    });
    await new Promise<void>((resolve) => httpsServer.listen(0, '127.0.0.1', resolve));
    const address = httpsServer.address();
    wssPort = typeof address === 'object' && address ? address.port : 0;
  });

  afterAll(async () => {
    await frontEnd.close();
    httpsServer.closeAllConnections();
    await new Promise((resolve) => httpsServer.close(resolve));
    await hub.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function runDevice(transport: 'amqp' | 'amqpws', registrationId: string, proof: { symmetricKey: string } | { cert: string; key: string }): Promise<DeviceRun> {
    const options = { transport, host: 'localhost', port: transport === 'amqp' ? amqpPort : wssPort, idScope: SCOPE, registrationId, ca: testPki().ca.certificatePem, ...proof };
    return new Promise((resolve, reject) => {
      execFile(process.execPath, [FIXTURE, JSON.stringify(options)], { env: { ...process.env, NODE_EXTRA_CA_CERTS: caFile }, timeout: 25_000 }, (error, stdout, stderr) => {
        if (error) return reject(new Error(`device process failed: ${error.message}\n${stderr}`));
        try {
          resolve(JSON.parse(stdout) as DeviceRun);
        } catch {
          reject(new Error(`device process printed no JSON: ${stdout}\n${stderr}`));
        }
      });
    });
  }

  async function expectAssigned(run: Promise<DeviceRun>, registrationId: string): Promise<void> {
    const { result, error } = await run;
    expect(error).toBeUndefined();
    expect(result).toMatchObject({ registrationId, status: 'assigned', assignedHub: hub.hostName, deviceId: registrationId });
    expect(await hub.getDevice(registrationId)).toBeDefined();
  }

  test.each(['amqp', 'amqpws'] as const)('symmetric key, individual enrollment, over %s', async (transport) => {
    await expectAssigned(runDevice(transport, `sym-${transport}`, { symmetricKey: individualKey }), `sym-${transport}`);
  });

  test.each(['amqp', 'amqpws'] as const)('symmetric key derived from a group key, over %s', async (transport) => {
    const registrationId = `grp-${transport}-1`;
    await expectAssigned(runDevice(transport, registrationId, { symmetricKey: deriveKey(groupKey, registrationId) }), registrationId);
  });

  test.each(['amqp', 'amqpws'] as const)('X.509 individual enrollment (self-signed), over %s: no SASL, the TLS chain', async (transport) => {
    await expectAssigned(runDevice(transport, 'x509-individual', { cert: selfSigned.certificatePem, key: selfSigned.privateKeyPem }), 'x509-individual');
  });

  test.each(['amqp', 'amqpws'] as const)('X.509 group through an intermediate (leaf + intermediate sent), over %s', async (transport) => {
    const registrationId = `x509-grp-${transport}`;
    const leaf = createLeaf(intermediate, { commonName: registrationId });
    await expectAssigned(runDevice(transport, registrationId, { cert: pem(leaf, intermediate), key: leaf.privateKeyPem }), registrationId);
  });

  /**
   * Refused when the connection opens (open-error, then Close). register() fails with the same raw
   * rhea error as when the register request itself was rejected: condition and DPS error body, not
   * retried (docs/device-wire.md trap 5), and no request ever reaches the pipeline.
   */
  test.each(['amqp', 'amqpws'] as const)('a wrong symmetric key over %s: refused at open, register() fails at once with unauthorized-access', async (transport) => {
    const register = jest.spyOn(registration, 'register');
    const started = Date.now();
    const { result, error } = await runDevice(transport, `sym-${transport}`, { symmetricKey: generateSymmetricKey() });
    expect(result).toBeUndefined();
    expect(error?.name).not.toBe('Timeout');
    expect(error?.condition).toBe('amqp:unauthorized-access');
    expect(JSON.parse(error?.description ?? '{}')).toMatchObject({ errorCode: 401002 });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(register).not.toHaveBeenCalled();
    register.mockRestore();
  });
});
