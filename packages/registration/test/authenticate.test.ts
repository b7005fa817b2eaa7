import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSasToken, deriveDeviceKey } from '@opendps/attestation';
import { generateSymmetricKey, type ProvisioningInstance } from '@opendps/model';
import { createRegistrationThrottle, DpsRegistrationService, type HubDirectory, type RegistrationThrottle } from '@opendps/registration';
import { SqliteStore, enrollmentGroups, enrollments, registrations, type Collection, type Store } from '@opendps/store';
import { testInstance } from './fixtures';

const idScope = '0ne0000AUTH';
const instance = testInstance(idScope);
const noHubs: HubDirectory = {
  connector: () => {
    throw new Error('no hub expected');
  },
};

const token = (registrationId: string, key: string, expiry = Math.floor(Date.now() / 1000) + 3600): string =>
  createSasToken({ resource: `${idScope}/registrations/${registrationId}`, key, keyName: 'registration', expiry });

/** The errorCode a promise rejects with; 0 when it resolves. */
async function outcomeCode(promise: Promise<unknown>): Promise<number> {
  try {
    await promise;
    return 0;
  } catch (error) {
    return (error as { errorCode?: number }).errorCode ?? -1;
  }
}

/**
 * `authenticate` is the attestation of `register` and nothing after it: the SAS of a connection is
 * checked when it opens (AMQP SASL PLAIN), with the codes a register would get.
 */
describe('RegistrationService.authenticate (a SAS checked without registering)', () => {
  let dir: string;
  let store: SqliteStore;
  let service: DpsRegistrationService;
  const deviceKey = generateSymmetricKey();
  const groupKey = generateSymmetricKey();
  const offGroupKey = generateSymmetricKey();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'opendps-authenticate-'));
    store = new SqliteStore(join(dir, 'store.db'));
    // answerWithinMs 0: a register that gets past attestation answers 202 without reaching a hub.
    service = new DpsRegistrationService({ store, instances: () => [instance], hubs: noHubs, answerWithinMs: 0 });
    await enrollments(store, idScope).put({
      registrationId: 'dev-1',
      attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: deviceKey, secondaryKey: generateSymmetricKey() } },
    });
    await enrollments(store, idScope).put({
      registrationId: 'dev-off',
      provisioningStatus: 'disabled',
      attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: deviceKey, secondaryKey: deviceKey } },
    });
    await enrollmentGroups(store, idScope).put({
      enrollmentGroupId: 'group-on',
      attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: groupKey, secondaryKey: generateSymmetricKey() } },
    });
    await enrollmentGroups(store, idScope).put({
      enrollmentGroupId: 'group-off',
      provisioningStatus: 'disabled',
      attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: offGroupKey, secondaryKey: offGroupKey } },
    });
  });

  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const proofOf = (sas: string) => ({ kind: 'sas' as const, token: sas });
  const authenticate = (registrationId: string, sas: string, scope = idScope) =>
    service.authenticate({ idScope: scope, registrationId, proof: proofOf(sas), transport: 'amqp' });
  const register = (registrationId: string, sas: string, scope = idScope) =>
    service.register({ idScope: scope, registrationId, proof: proofOf(sas), transport: 'amqp' });

  // Every row names its ID scope: jest would take a missing last argument for `done`.
  const cases: Array<[string, string, string, number, string]> = [
    ['individual, right key', 'dev-1', token('dev-1', deviceKey), 0, idScope],
    ['group-derived key', 'grp-dev-1', token('grp-dev-1', deriveDeviceKey(groupKey, 'grp-dev-1')), 0, idScope],
    ['individual, wrong key', 'dev-1', token('dev-1', generateSymmetricKey()), 401002, idScope],
    ['expired token', 'dev-1', token('dev-1', deviceKey, 1000), 401003, idScope],
    ['token for another registration id', 'dev-off', token('dev-1', deviceKey), 401005, idScope],
    ['malformed token', 'dev-1', 'Bearer x', 401006, idScope],
    ['no enrollment, no group key matches', 'stranger', token('stranger', generateSymmetricKey()), 401002, idScope],
    ['group key itself instead of the derived key', 'grp-dev-2', token('grp-dev-2', groupKey), 401002, idScope],
    ['disabled enrollment, wrong key', 'dev-off', token('dev-off', generateSymmetricKey()), 401002, idScope],
    ['invalid registration id', '-bad-', token('-bad-', deviceKey), 400003, idScope],
    ['unknown ID scope', 'dev-1', token('dev-1', deviceKey), 404205, '0ne99999999'],
  ];

  test.each(cases)('%s: the code register gets', async (_name, registrationId, sas, expected, scope) => {
    expect(await outcomeCode(authenticate(registrationId, sas, scope))).toBe(expected);
    expect(await outcomeCode(register(registrationId, sas, scope))).toBe(expected);
  });

  test('a disabled enrollment (individual or group) with a good key passes: register answers it with status disabled', async () => {
    await expect(authenticate('dev-off', token('dev-off', deviceKey))).resolves.toBeUndefined();
    await expect(authenticate('grp-off-1', token('grp-off-1', deriveDeviceKey(offGroupKey, 'grp-off-1')))).resolves.toBeUndefined();
    expect((await register('grp-off-1', token('grp-off-1', deriveDeviceKey(offGroupKey, 'grp-off-1')))).body.status).toBe('disabled');
  });

  test('registers nothing: no registration state is written', async () => {
    await authenticate('grp-quiet', token('grp-quiet', deriveDeviceKey(groupKey, 'grp-quiet')));
    await authenticate('dev-off', token('dev-off', deviceKey));
    expect(await registrations(store, idScope).get('grp-quiet')).toBeUndefined();
    expect(await registrations(store, idScope).get('dev-off')).toBeUndefined();
  });

  test('throttled (429 with retry-after) and a failing store (500) are thrown as such, never as 401', async () => {
    const limited: ProvisioningInstance = { ...instance, quotas: { pollsPerSecond: 1 } };
    let now = 1_700_000_000_000;
    const throttle: RegistrationThrottle = createRegistrationThrottle(store, () => now);
    const throttled = new DpsRegistrationService({ store, instances: () => [limited], hubs: noHubs, throttle });
    const good = token('dev-1', deviceKey);
    await throttled.authenticate({ idScope, registrationId: 'dev-1', proof: proofOf(good), transport: 'amqp' });
    // Counted as a poll: the second check in the same one-second window is over a 1/s polling quota.
    const refusal = await throttled.authenticate({ idScope, registrationId: 'dev-1', proof: proofOf(good), transport: 'amqp' }).catch((error: unknown) => error);
    expect(refusal).toMatchObject({ status: 429, errorCode: 429001, info: { 'retry-after': '1' } });
    now += 1000;
    await throttled.authenticate({ idScope, registrationId: 'dev-1', proof: proofOf(good), transport: 'amqp' });

    const down = (): Promise<never> => Promise.reject(new Error('the store is down'));
    const broken: Store = {
      kind: 'sqlite',
      collection: <T>() => ({ get: down, put: down, delete: down, list: down, findByIndex: down, count: down, version: down }) as Collection<T>,
      increment: async () => 1,
      close: async () => undefined,
    };
    const failing = new DpsRegistrationService({ store: broken, instances: () => [instance], hubs: noHubs });
    const failure = await failing.authenticate({ idScope, registrationId: 'dev-1', proof: proofOf(good), transport: 'amqp' }).catch((error: unknown) => error);
    expect(failure).toMatchObject({ status: 500, errorCode: 500001 });
  });

  test('counts against the polling quota, not against a device\'s own polls', async () => {
    const now = 1_700_000_500_000;
    const throttle = createRegistrationThrottle(store, () => now);
    const perDevice: ProvisioningInstance = { ...instance, idScope: '0ne0000AUT2', quotas: { devicePollsPer10Seconds: 1 } };
    await throttle.admit(perDevice, 'authenticate', 'dev-1');
    await throttle.admit(perDevice, 'authenticate', 'dev-1');
    await throttle.admit(perDevice, 'poll', 'dev-1');
    await expect(throttle.admit(perDevice, 'poll', 'dev-1')).rejects.toMatchObject({ status: 429 });
  });
});
