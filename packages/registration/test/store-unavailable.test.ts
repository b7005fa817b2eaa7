import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSasToken, deriveDeviceKey } from '@opendps/attestation';
import { BuiltInHub } from '@opendps/hub';
import { Errors, generateSymmetricKey, isDpsError, type ProvisioningInstance } from '@opendps/model';
import { createRootCa, createServerCertificate } from '@opendps/pki';
import { DpsRegistrationService, refusalReason } from '@opendps/registration';
import { SqliteStore, enrollmentGroups, registrations, type Store } from '@opendps/store';
import { storeWith } from './fixtures';
import type { OperationRecord } from '@opendps/registration';

/**
 * A store that cannot answer during the assignment (a Redis restarting, a cluster slot without its
 * master) is no verdict on the device: it is told 503 with retry-after and its registration is not
 * recorded `failed`; asked again once the store answers, it is assigned.
 */
const idScope = '0ne0000F2B8';

/** The real store, whose `registrations` writes fail with storeUnavailable while `down.value`. */
function flaky(inner: Store, down: { value: boolean }): Store {
  return storeWith(inner, (name, collection) =>
    name === 'registrations'
      ? { put: (...args) => (down.value ? Promise.reject(Errors.storeUnavailable(undefined, { 'retry-after': '2' })) : collection.put(...args)) }
      : undefined,
  );
}

describe('a store unavailable during the assignment', () => {
  let dir: string;
  let store: SqliteStore;
  let hub: BuiltInHub;
  let service: DpsRegistrationService;
  let instance: ProvisioningInstance;
  const down = { value: false };
  const groupKey = generateSymmetricKey();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'opendps-store-unavailable-'));
    store = new SqliteStore(join(dir, 'dps.db'));
    const ca = createRootCa({ commonName: 'store unavailable test CA' });
    const server = createServerCertificate(ca, ['localhost']);
    hub = new BuiltInHub({ name: 'hub-a', host: 'localhost', port: 0, listenAddress: '127.0.0.1', tls: { cert: server.certificatePem, key: server.privateKeyPem }, store });
    await hub.start();
    instance = {
      name: 'default',
      idScope,
      serviceHostName: 'localhost',
      policies: [],
      allocationPolicy: 'hashed',
      linkedHubs: [{ name: 'hub-a', hostName: hub.hostName, builtin: { port: hub.port }, allocationWeight: 1, applyAllocationPolicy: true }],
    };
    await enrollmentGroups(store, idScope).put({
      enrollmentGroupId: 'fleet',
      attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: groupKey, secondaryKey: generateSymmetricKey() } },
      provisioningStatus: 'enabled',
    } as never);
    service = new DpsRegistrationService({ store: flaky(store, down), instances: () => [instance], hubs: { connector: () => hub } });
  });

  afterAll(async () => {
    await hub.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const register = (registrationId: string) => {
    const key = deriveDeviceKey(groupKey, registrationId);
    const token = createSasToken({ resource: `${idScope}/registrations/${registrationId}`, key, keyName: 'registration', expiry: Math.floor(Date.now() / 1000) + 600 });
    return service.register({ idScope, registrationId, proof: { kind: 'sas', token }, transport: 'mqtt' });
  };

  test('is answered 503 with retry-after, not a final failed, and the retry is assigned', async () => {
    down.value = true;
    const refused = await register('device-1').then(
      (outcome) => outcome,
      (error: unknown) => error,
    );
    expect(isDpsError(refused) && { status: refused.status, errorCode: refused.errorCode, retryAfter: refused.info?.['retry-after'] }).toEqual({
      status: 503,
      errorCode: 503002,
      retryAfter: '2',
    });
    expect(await registrations(store, idScope).get('device-1')).toBeUndefined();
    // Traced and counted as what it is, not as an unreachable hub (both are 503).
    expect(refusalReason(refused)).toBe('storeUnavailable');

    down.value = false;
    const outcome = await register('device-1');
    expect(outcome.body.status).toBe('assigned');
    expect((await registrations(store, idScope).get('device-1'))?.status).toBe('assigned');
  });

  test('answered 202: a state that cannot be written leaves the operation assigning, and its failure is never unhandled', async () => {
    // The in-flight record is held back until the state's write has failed: the failure then waits
    // for whoever records the outcome, which must not make it an unhandled rejection meanwhile.
    let stateFailed!: () => void;
    const failed = new Promise<void>((resolve) => (stateFailed = resolve));
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const slow = storeWith(store, (name, collection) => {
      if (name === 'registrations') {
        return {
          put: () => {
            stateFailed();
            return Promise.reject(Errors.storeUnavailable());
          },
        };
      }
      if (name === 'operations') return { put: async (...args) => (await held, collection.put(...args)) };
      return undefined;
    });
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const node = new DpsRegistrationService({ store: slow, instances: () => [instance], hubs: { connector: () => hub }, answerWithinMs: 0 });
    try {
      const registrationId = 'device-202';
      const key = deriveDeviceKey(groupKey, registrationId);
      const token = createSasToken({ resource: `${idScope}/registrations/${registrationId}`, key, keyName: 'registration', expiry: Math.floor(Date.now() / 1000) + 600 });
      const answered = node.register({ idScope, registrationId, proof: { kind: 'sas', token }, transport: 'mqtt' });
      await failed;
      // Long enough for Node to report a rejection nobody handles.
      for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
      release();
      const outcome = await answered;
      expect(outcome.status).toBe(202);
      expect(await node.settle(10_000)).toBe(true);
      expect(unhandled).toEqual([]);
      const operation = await store.collection<OperationRecord>(idScope, 'operations').get(outcome.body.operationId);
      expect(operation?.value.status).toBe('assigning');
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
