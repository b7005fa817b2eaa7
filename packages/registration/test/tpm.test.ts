import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { createSasToken } from '@opendps/attestation';
import { BuiltInHub } from '@opendps/hub';
import { generateSymmetricKey } from '@opendps/model';
import {
  DpsRegistrationService,
  isTpmChallengeError,
  tpmChallenges,
  type HubDirectory,
  type Proof,
  type RegistrationOutcome,
  type RegistrationServiceOptions,
} from '@opendps/registration';
import { SqliteStore, enrollments, registrations } from '@opendps/store';
import { SoftwareTpm } from './tpmSoftwareDevice';
import { ONE_HUB, testInstance } from './fixtures';

/**
 * TPM attestation in the registration service, with a software TPM whose every integrity check is
 * enforced (ActivateCredential from the attestation oracles, Import by hand): what the device can
 * open is exactly what the service sent it.
 */
const idScope = '0ne0000TPM1';
const instance = testInstance(idScope, { linkedHubs: ONE_HUB });

let dir: string;
let store: SqliteStore;
let hub: BuiltInHub;
let hubs: HubDirectory;
/** Held while a test needs a registration to stay in flight. */
let hubGate: Promise<void> = Promise.resolve();
const device = new SoftwareTpm();
const stranger = new SoftwareTpm();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'opendps-tpm-'));
  store = new SqliteStore(join(dir, 'store.db'));
  // Never started: the registration service only uses its registry (the store), and its host name.
  hub = new BuiltInHub({ name: 'hub-1', host: 'localhost', port: 8883, tls: { cert: '', key: '' }, store });
  hubs = {
    connector: () => ({
      get hostName() {
        return hub.hostName;
      },
      getDevice: async (deviceId: string) => {
        await hubGate;
        return hub.getDevice(deviceId);
      },
      upsertDevice: (identity, twin) => hub.upsertDevice(identity, twin),
      deleteDevice: (deviceId) => hub.deleteDevice(deviceId),
    }),
  };
  for (const registrationId of ['tpm-1', 'tpm-2', 'tpm-3', 'tpm-4', 'tpm-5']) {
    await enrollments(store, idScope).put({ registrationId, attestation: { type: 'tpm', tpm: { endorsementKey: device.endorsementKey } } });
  }
  await enrollments(store, idScope).put({
    registrationId: 'tpm-off',
    provisioningStatus: 'disabled',
    attestation: { type: 'tpm', tpm: { endorsementKey: device.endorsementKey } },
  });
  await enrollments(store, idScope).put({
    registrationId: 'sym-1',
    attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: generateSymmetricKey(), secondaryKey: generateSymmetricKey() } },
  });
}, 30_000);

afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const service = (options: Partial<RegistrationServiceOptions> = {}) =>
  new DpsRegistrationService({ store, instances: () => [instance], hubs, ...options });

const tpmProof = (tpm: SoftwareTpm, token?: string): Proof => ({
  kind: 'tpm',
  endorsementKey: tpm.endorsementKey,
  storageRootKey: tpm.storageRootKey,
  ...(token !== undefined ? { token } : {}),
});

const register = (svc: DpsRegistrationService, registrationId: string, proof: Proof) =>
  svc.register({ idScope, registrationId, proof, transport: 'https' });

async function failure(promise: Promise<unknown>): Promise<{ status?: number; errorCode?: number; error: unknown }> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeDefined();
  const coded = error as { status?: number; errorCode?: number };
  return { status: coded.status, errorCode: coded.errorCode, error };
}

/** Step 1 over HTTPS: the 401 carrying the blob; the device activates it. */
async function challenge(svc: DpsRegistrationService, registrationId: string, tpm = device): Promise<string> {
  const { error, status } = await failure(register(svc, registrationId, tpmProof(tpm)));
  expect(status).toBe(401);
  if (!isTpmChallengeError(error)) throw error;
  expect(error.keyName).toBe('registration');
  tpm.activate(error.authenticationKey);
  return error.authenticationKey;
}

async function pollUntilFinal(svc: DpsRegistrationService, registrationId: string, first: RegistrationOutcome, proof: Proof): Promise<RegistrationOutcome> {
  let outcome = first;
  for (let i = 0; i < 50 && outcome.status === 202; i++) {
    await delay(50);
    outcome = await svc.operationStatus({ idScope, registrationId, operationId: outcome.body.operationId, proof, transport: 'https' });
  }
  return outcome;
}

describe('TPM attestation', () => {
  it('challenges with a blob of a fresh K1 that only this TPM opens, kept in the store for any node', async () => {
    const svc = service();
    const blob = await challenge(svc, 'tpm-1');
    const record = (await tpmChallenges(store, idScope).get('tpm-1'))?.value;
    expect(record?.state).toBe('issued');
    // The device imported exactly the K1 the service keeps.
    expect(device.activate(blob).toString('base64')).toBe(record?.identityKey);
    // Another TPM's EK cannot decrypt the credential seed.
    expect(() => stranger.activate(blob)).toThrow();
    // A second challenge replaces K1.
    await challenge(svc, 'tpm-1');
    expect((await tpmChallenges(store, idScope).get('tpm-1'))?.value.identityKey).not.toBe(record?.identityKey);
  });

  it('the answer signed with K1 registers the device; the result wraps its hub key K2, and K1 is discarded', async () => {
    const svc = service();
    await challenge(svc, 'tpm-2');
    const outcome = await register(svc, 'tpm-2', tpmProof(device, device.dpsToken(idScope, 'tpm-2')));
    expect(outcome.status).toBe(200);
    expect(outcome.body.status).toBe('assigned');
    const state = outcome.body.registrationState;
    expect(state).toMatchObject({ registrationId: 'tpm-2', deviceId: 'tpm-2', assignedHub: 'localhost:8883', status: 'assigned' });
    const k2 = device.activate(state?.tpm?.authenticationKey as string);
    const atHub = await hub.getDevice('tpm-2');
    expect(atHub?.identity.authentication).toMatchObject({ type: 'sas', symmetricKey: { primaryKey: k2.toString('base64') } });
    expect(k2).toHaveLength(32);
    // No secret and no blob in the registration record; K1 is gone.
    const recorded = await registrations(store, idScope).get('tpm-2');
    expect(recorded?.status).toBe('assigned');
    expect(JSON.stringify(recorded)).not.toContain(k2.toString('base64'));
    expect(recorded?.tpm).toBeUndefined();
    expect(await tpmChallenges(store, idScope).get('tpm-2')).toBeUndefined();

    // Re-registration to the same hub re-wraps the key the device has there (a new blob, the same K2).
    await challenge(svc, 'tpm-2');
    const again = await register(svc, 'tpm-2', tpmProof(device, device.dpsToken(idScope, 'tpm-2')));
    const blob = again.body.registrationState?.tpm?.authenticationKey as string;
    expect(blob).not.toBe(state?.tpm?.authenticationKey);
    expect(device.activate(blob).equals(k2)).toBe(true);
  });

  it('a replayed answer is refused: after completion, and while the first registration is in flight', async () => {
    const svc = service({ answerWithinMs: 0 });
    await challenge(svc, 'tpm-3');
    const token = device.dpsToken(idScope, 'tpm-3');
    let open = () => {};
    hubGate = new Promise((resolve) => (open = resolve));
    const first = await register(svc, 'tpm-3', tpmProof(device, token));
    expect(first.status).toBe(202);
    expect((await failure(register(svc, 'tpm-3', tpmProof(device, token)))).errorCode).toBe(401000);
    // Nor can the token start a registration as a plain SAS (MQTT, or HTTPS without the TPM keys).
    expect((await failure(register(svc, 'tpm-3', { kind: 'sas', token }))).errorCode).toBe(401000);

    // HTTPS polls carry only the token (proof sas); AMQP polls the SASL TPM proof. Both verify with K1.
    const poll = (proof: Proof) => svc.operationStatus({ idScope, registrationId: 'tpm-3', operationId: first.body.operationId, proof, transport: 'https' });
    expect((await poll(tpmProof(device, token))).status).toBe(202);
    expect((await poll({ kind: 'sas', token })).status).toBe(202);
    // ... and only with the device's EK and K1.
    expect((await failure(poll(tpmProof(stranger, token)))).errorCode).toBe(401000);
    const forged = createSasToken({ resource: `${idScope}/registrations/tpm-3`, key: generateSymmetricKey(), expiry: Math.floor(Date.now() / 1000) + 60, encodeResource: true });
    expect((await failure(poll({ kind: 'sas', token: forged }))).errorCode).toBe(401002);
    open();
    const final = await pollUntilFinal(svc, 'tpm-3', first, { kind: 'sas', token });
    expect(final.body.status).toBe('assigned');
    // The final answer carries the second blob (docs/device-wire.md, trap 15), and it opens to the hub key.
    const k2 = device.activate(final.body.registrationState?.tpm?.authenticationKey as string);
    expect((await hub.getDevice('tpm-3'))?.identity.authentication).toMatchObject({ symmetricKey: { primaryKey: k2.toString('base64') } });

    // After the final answer K1 is gone: neither the token nor a replay of it authenticates any more.
    expect((await failure(svc.operationStatus({ idScope, registrationId: 'tpm-3', operationId: first.body.operationId, proof: { kind: 'sas', token }, transport: 'https' }))).errorCode).toBe(401000);
    expect((await failure(register(svc, 'tpm-3', tpmProof(device, token)))).errorCode).toBe(401000);
  });

  it('an expired challenge is refused, and so is an expired token', async () => {
    let now = Date.now();
    const svc = service({ tpmChallengeSeconds: 1, now: () => now });
    await challenge(svc, 'tpm-4');
    const expiredToken = device.dpsToken(idScope, 'tpm-4', Math.floor(Date.now() / 1000) - 3600);
    expect((await failure(register(svc, 'tpm-4', tpmProof(device, expiredToken)))).errorCode).toBe(401003);
    now += 1001;
    const late = await failure(register(svc, 'tpm-4', tpmProof(device, device.dpsToken(idScope, 'tpm-4'))));
    expect(late.errorCode).toBe(401000);
    expect(String((late.error as Error).message)).toMatch(/expired/);
  });

  it('a wrong key, another resource or a poll without an answered challenge are refused, and do not burn the challenge', async () => {
    const svc = service();
    await challenge(svc, 'tpm-5');
    const forged = createSasToken({ resource: `${idScope}/registrations/tpm-5`, key: generateSymmetricKey(), keyName: 'registration', expiry: Math.floor(Date.now() / 1000) + 3600, encodeResource: true });
    expect((await failure(register(svc, 'tpm-5', tpmProof(device, forged)))).errorCode).toBe(401002);
    // Signed with K1 but for another registration id.
    expect((await failure(register(svc, 'tpm-5', tpmProof(device, device.dpsToken(idScope, 'tpm-1'))))).errorCode).toBe(401005);
    // A TPM holding another EK cannot answer for this one, even with a token from its own K1.
    await challenge(svc, 'tpm-5', device);
    expect((await failure(register(svc, 'tpm-5', tpmProof(stranger, device.dpsToken(idScope, 'tpm-5'))))).errorCode).toBe(401000);
    // A poll before the challenge is answered authenticates nothing.
    const poll = svc.operationStatus({ idScope, registrationId: 'tpm-5', operationId: '4.x.y', proof: { kind: 'sas', token: device.dpsToken(idScope, 'tpm-5') }, transport: 'https' });
    expect((await failure(poll)).errorCode).toBe(401000);
    // The challenge survived all of it.
    expect((await register(svc, 'tpm-5', tpmProof(device, device.dpsToken(idScope, 'tpm-5')))).body.status).toBe('assigned');
  });

  it('unknown registration, wrong EK and non-TPM enrollments get a coded 401 without a blob, and store nothing', async () => {
    const svc = service();
    for (const [registrationId, tpm] of [['nobody', device], ['tpm-1', stranger], ['sym-1', device]] as const) {
      const { error, errorCode } = await failure(register(svc, registrationId, tpmProof(tpm)));
      expect(errorCode).toBe(401000);
      expect(isTpmChallengeError(error)).toBe(false);
      expect(JSON.stringify(error)).not.toContain('authenticationKey');
    }
    expect(await tpmChallenges(store, idScope).get('nobody')).toBeUndefined();
    expect(await tpmChallenges(store, idScope).get('sym-1')).toBeUndefined();
    // Bad input is coded: a missing SRK, a malformed EK.
    expect((await failure(register(svc, 'tpm-1', { kind: 'tpm', endorsementKey: device.endorsementKey }))).errorCode).toBe(400011);
    expect((await failure(register(svc, 'tpm-1', { kind: 'tpm', endorsementKey: '!!', storageRootKey: '' }))).errorCode).toBe(401000);
    expect((await failure(register(svc, 'tpm-1', tpmProof(device, 'garbage')))).errorCode).toBe(401006);
  });

  it('a disabled TPM enrollment is challenged, then answered with disabled', async () => {
    const svc = service();
    await challenge(svc, 'tpm-off');
    const outcome = await register(svc, 'tpm-off', tpmProof(device, device.dpsToken(idScope, 'tpm-off')));
    expect(outcome.body.status).toBe('disabled');
    expect(outcome.body.registrationState?.tpm).toBeUndefined();
  });

  it('the AMQP SASL TPM challenger issues the same challenge as raw bytes, and refuses with a coded 401', async () => {
    const svc = service();
    const keys = { endorsementKey: Buffer.from(device.endorsementKey, 'base64'), storageRootKey: Buffer.from(device.storageRootKey, 'base64') };
    const blob = await svc.tpm.challenge({ idScope, registrationId: 'tpm-1', ...keys });
    expect(device.activate(blob.toString('base64')).toString('base64')).toBe((await tpmChallenges(store, idScope).get('tpm-1'))?.value.identityKey);
    const outcome = await svc.register({ idScope, registrationId: 'tpm-1', proof: tpmProof(device, device.dpsToken(idScope, 'tpm-1')), transport: 'amqp' });
    expect(outcome.body.status).toBe('assigned');
    expect(device.activate(outcome.body.registrationState?.tpm?.authenticationKey as string).toString('base64')).toBe(
      (await hub.getDevice('tpm-1'))?.identity.authentication.type === 'sas'
        ? ((await hub.getDevice('tpm-1'))?.identity.authentication as { symmetricKey: { primaryKey: string } }).symmetricKey.primaryKey
        : 'not sas',
    );
    const refused = await failure(svc.tpm.challenge({ idScope, registrationId: 'tpm-1', endorsementKey: Buffer.from(stranger.endorsementKey, 'base64'), storageRootKey: keys.storageRootKey }));
    expect([refused.status, refused.errorCode]).toEqual([401, 401000]);
    expect((await failure(svc.tpm.challenge({ idScope: 'nope', registrationId: 'tpm-1', ...keys }))).errorCode).toBe(404205);
  });
});
