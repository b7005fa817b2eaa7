import { execFile, execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BuiltInHub } from '@opendps/hub';
import { generateSymmetricKey, validateIndividualEnrollment, type ProvisioningInstance } from '@opendps/model';
import { DpsRegistrationService } from '@opendps/registration';
import { SqliteStore, enrollments } from '@opendps/store';
import { createDpsAmqpFrontEnd, type DpsAmqpFrontEnd } from '../src';
import { ID_SCOPE, testPki } from './helpers';

const SCRIPT = path.join(__dirname, 'fixtures', 'proton_register.py');

/** The Debian python (python3-qpid-proton installs there), else whatever python3 is on the PATH. */
function protonPython(): string {
  for (const candidate of ['/usr/bin/python3', 'python3']) {
    try {
      execFileSync(candidate, ['-c', 'import proton'], { stdio: 'ignore' });
      return candidate;
    } catch {
      // try the next one
    }
  }
  throw new Error('Qpid Proton for Python is missing: install the Debian package python3-qpid-proton (apt-get install -y python3-qpid-proton).');
}

/** A DPS symmetric-key SAS (docs/device-wire.md §1): HMAC over the raw `sr`, then `se`. */
function dpsSas(registrationId: string, key: string): string {
  const sr = `${ID_SCOPE}/registrations/${registrationId}`;
  const se = Math.floor(Date.now() / 1000) + 3600;
  const sig = createHmac('sha256', Buffer.from(key, 'base64')).update(`${sr}\n${se}`).digest('base64');
  return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&skn=registration&se=${se}`;
}

/** Qpid Proton, an independent AMQP 1.0 implementation, registers through SASL PLAIN over TLS. */
describe('Qpid Proton (python3-qpid-proton) against the AMQP front-end', () => {
  const python = protonPython();
  let dir: string;
  let store: SqliteStore;
  let hub: BuiltInHub;
  let frontEnd: DpsAmqpFrontEnd;
  let port: number;
  let caFile: string;
  const key = generateSymmetricKey();

  beforeAll(async () => {
    const { ca, server } = testPki();
    dir = mkdtempSync(path.join(tmpdir(), 'opendps-amqp-proton-'));
    caFile = path.join(dir, 'ca.pem');
    writeFileSync(caFile, ca.certificatePem);
    store = new SqliteStore(path.join(dir, 'state.db'));
    hub = new BuiltInHub({ name: 'hub-1', host: 'localhost', port: 0, listenAddress: '127.0.0.1', tls: { cert: server.certificatePem, key: server.privateKeyPem }, store });
    await hub.start();
    const instance: ProvisioningInstance = {
      name: 'default',
      idScope: ID_SCOPE,
      serviceHostName: 'localhost',
      policies: [],
      linkedHubs: [{ name: 'hub-1', hostName: hub.hostName, allocationWeight: 1, applyAllocationPolicy: true }],
      allocationPolicy: 'hashed',
    };
    await enrollments(store, ID_SCOPE).put(
      validateIndividualEnrollment({ registrationId: 'proton-dev-1', attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: generateSymmetricKey() } } }),
    );
    const registration = new DpsRegistrationService({ store, instances: () => [instance], hubs: { connector: () => hub }, answerWithinMs: 0, retryAfterSeconds: 1 });
    frontEnd = createDpsAmqpFrontEnd({ registration });
    port = (await frontEnd.listen({ port: 0, host: '127.0.0.1', tls: { cert: server.certificatePem, key: server.privateKeyPem } })).port;
  });

  afterAll(async () => {
    await frontEnd.close();
    await hub.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function runProton(registrationId: string, sas: string): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      execFile(python, [SCRIPT, 'localhost', String(port), caFile, ID_SCOPE, registrationId, sas], { timeout: 25_000 }, (error, stdout, stderr) => {
        if (error) return reject(new Error(`proton script failed: ${error.message}\n${stderr}`));
        const line = stdout.trim().split('\n').pop() ?? '';
        try {
          resolve(JSON.parse(line) as Record<string, unknown>);
        } catch {
          reject(new Error(`proton script printed no JSON: ${stdout}\n${stderr}`));
        }
      });
    });
  }

  test('register (202, retry-after and Retry-After), poll, assigned at the built-in hub', async () => {
    const output = await runProton('proton-dev-1', dpsSas('proton-dev-1', key));
    expect(output.error).toBeUndefined();
    expect(output.result).toMatchObject({ status: 'assigned', registrationState: { registrationId: 'proton-dev-1', assignedHub: hub.hostName, deviceId: 'proton-dev-1' } });
    expect(output.polls).toBeGreaterThanOrEqual(1);
    expect((output.retryAfter as unknown[][])[0]).toEqual([1, 1]);
    expect(await hub.getDevice('proton-dev-1')).toBeDefined();
  });

  test('a wrong key: refused at open, the Open carrying com.microsoft:open-error and the Close the same error', async () => {
    const output = await runProton('proton-dev-1', dpsSas('proton-dev-1', generateSymmetricKey()));
    const error = output.error as { connection?: string; description: string; openError?: { descriptor: number; condition: string; description: string; info: unknown } };
    expect(error.connection).toBe('amqp:unauthorized-access');
    expect(JSON.parse(error.description)).toMatchObject({ errorCode: 401002 });
    // 0x1d is amqp:error:list; DPS sends info {} (docs/device-wire.md §3)
    expect(error.openError).toEqual({ descriptor: 0x1d, condition: 'amqp:unauthorized-access', description: error.description, info: {} });
  });
});
