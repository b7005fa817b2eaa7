import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSymmetricKey } from '@opendps/model';
import { BuiltInHub, type HubConnector } from '@opendps/hub';
import {
  DpsRegistrationService,
  isTpmChallengeError,
  settleTpmHubKey,
  TPM_HUB_KEYS,
  type HubDirectory,
  type OperationFinished,
  type OperationRecord,
  type Proof,
  type RegistrationOutcome,
} from '@opendps/registration';
import { RedisStore, SqliteStore, enrollments, type Store } from '@opendps/store';
import { startRedis, type RedisServer } from '../../../test/support/redis-server';
import { SoftwareTpm } from './tpmSoftwareDevice';
import { ONE_HUB, storeWith, testInstance } from './fixtures';

/**
 * The TPM hub key (K2) is settled once per device in the shared store: two gateway nodes finishing
 * the same brand-new device (a poll takeover while the first node still works) hand the device
 * blobs of the same K2, and the hub holds that key.
 */
const idScope = '0ne0000RACE';
const instance = testInstance(idScope, { linkedHubs: ONE_HUB });
const device = new SoftwareTpm();

/** The store as one node sees it, telling the test each final operation record this node writes. */
function reportingFinals(store: Store, onFinal: (record: OperationFinished) => void): Store {
  return storeWith(store, (name, collection) =>
    name === 'operations'
      ? {
          async put(id, value, options) {
            const written = await collection.put(id, value, options);
            const record = value as unknown as OperationRecord;
            if (record.status !== 'assigning') onFinal(record);
            return written;
          },
        }
      : undefined,
  );
}

describe.each(['sqlite', 'redis'] as const)('TPM hub key on %s', (kind) => {
  let store: Store;
  let dir: string;
  let redis: RedisServer | undefined;
  let hub: BuiltInHub;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'opendps-tpm-race-'));
    if (kind === 'redis') {
      redis = await startRedis();
      store = await RedisStore.connect(redis.url);
    } else {
      store = new SqliteStore(join(dir, 'store.db'));
    }
    // Never started: the registration service only uses its registry (the store) and host name.
    hub = new BuiltInHub({ name: 'hub-1', host: 'localhost', port: 8883, tls: { cert: '', key: '' }, store });
    await enrollments(store, idScope).put({ registrationId: 'tpm-race', attestation: { type: 'tpm', tpm: { endorsementKey: device.endorsementKey } } });
  }, 30_000);

  afterAll(async () => {
    await store.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('concurrent settles of one device agree on the first stored key', async () => {
    const candidates = Array.from({ length: 8 }, () => ({ primaryKey: generateSymmetricKey(), secondaryKey: generateSymmetricKey() }));
    const settled = await Promise.all(candidates.map((candidate) => settleTpmHubKey(store, idScope, 'settle-1', candidate)));
    const stored = (await store.collection<{ primaryKey: string }>(idScope, TPM_HUB_KEYS).get('settle-1'))?.value;
    expect(candidates.map((candidate) => candidate.primaryKey)).toContain(stored?.primaryKey);
    for (const keys of settled) expect(keys.primaryKey).toBe(stored?.primaryKey);
  });

  it('two nodes finishing the same new device give it blobs of one K2, the key the hub holds', async () => {
    // Each node looks the device up at the hub; neither goes on before both have looked, so both
    // see a brand-new device and each would pick a K2 of its own.
    let looked = 0;
    let bothLooked = () => {};
    const gate = new Promise<void>((resolve) => (bothLooked = resolve));
    const connector: HubConnector = {
      get hostName() {
        return hub.hostName;
      },
      getDevice: async (deviceId) => {
        const found = await hub.getDevice(deviceId);
        if (++looked === 2) bothLooked();
        await gate;
        return found;
      },
      upsertDevice: (identity, twin) => hub.upsertDevice(identity, twin),
      deleteDevice: (deviceId) => hub.deleteDevice(deviceId),
    };
    const hubs: HubDirectory = { connector: () => connector };

    let firstNodeFinal = (_record: OperationFinished) => {};
    const firstNodeDone = new Promise<OperationFinished>((resolve) => (firstNodeFinal = resolve));
    // Node A answers 202 at once and its lease is over as soon as it is written: the device's next
    // poll, on node B, takes the work over while A is still doing it.
    const nodeA = new DpsRegistrationService({
      store: reportingFinals(store, (record) => firstNodeFinal(record)),
      instances: () => [instance],
      hubs,
      nodeId: 'node-a',
      answerWithinMs: 0,
      leaseSeconds: 0,
    });
    const nodeB = new DpsRegistrationService({ store, instances: () => [instance], hubs, nodeId: 'node-b', answerWithinMs: 20_000 });

    const keys: Proof = { kind: 'tpm', endorsementKey: device.endorsementKey, storageRootKey: device.storageRootKey };
    const challenge = await nodeA.register({ idScope, registrationId: 'tpm-race', proof: keys, transport: 'https' }).then(
      () => undefined,
      (error: unknown) => error,
    );
    if (!isTpmChallengeError(challenge)) throw new Error(`expected the TPM challenge, got ${String(challenge)}`);
    device.activate(challenge.authenticationKey);
    const token = device.dpsToken(idScope, 'tpm-race');

    const started = await nodeA.register({ idScope, registrationId: 'tpm-race', proof: { ...keys, token }, transport: 'https' });
    expect(started.status).toBe(202);
    const takenOver: RegistrationOutcome = await nodeB.operationStatus({
      idScope,
      registrationId: 'tpm-race',
      operationId: started.body.operationId,
      proof: { kind: 'sas', token },
      transport: 'https',
    });
    const first = await firstNodeDone;
    expect(looked).toBe(2);

    expect(takenOver.status).toBe(200);
    expect(takenOver.body.status).toBe('assigned');
    expect(first.status).toBe('assigned');
    const blobA = first.registrationState?.tpm?.authenticationKey;
    const blobB = takenOver.body.registrationState?.tpm?.authenticationKey;
    if (!blobA || !blobB) throw new Error('both answers must carry the hub key blob');
    expect(blobA).not.toBe(blobB);
    const k2 = device.activate(blobA);
    expect(device.activate(blobB).equals(k2)).toBe(true);
    expect((await hub.getDevice('tpm-race'))?.identity.authentication).toMatchObject({
      type: 'sas',
      symmetricKey: { primaryKey: k2.toString('base64') },
    });
  });
});
