import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSasToken, deriveDeviceKey } from '@opendps/attestation';
import { generateSymmetricKey } from '@opendps/model';
import { DpsRegistrationService, type HubDirectory } from '@opendps/registration';
import { SqliteStore, enrollmentGroups, enrollments, registrations } from '@opendps/store';
import { testInstance } from './fixtures';

const idScope = '0ne0000ABCD';
const instance = testInstance(idScope);
/** No hub is reached by these tests: every case is decided before allocation. */
const noHubs: HubDirectory = {
  connector: () => {
    throw new Error('no hub expected');
  },
};

function token(registrationId: string, key: string, expiry = Math.floor(Date.now() / 1000) + 3600): string {
  return createSasToken({ resource: `${idScope}/registrations/${registrationId}`, key, keyName: 'registration', expiry });
}

async function errorCode(promise: Promise<unknown>): Promise<number | undefined> {
  try {
    await promise;
  } catch (error) {
    return (error as { errorCode?: number }).errorCode;
  }
  return undefined;
}

describe('registration attestation (symmetric keys)', () => {
  let dir: string;
  let store: SqliteStore;
  let service: DpsRegistrationService;
  const deviceKey = generateSymmetricKey();
  const groupKey = generateSymmetricKey();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'opendps-registration-'));
    store = new SqliteStore(join(dir, 'store.db'));
    service = new DpsRegistrationService({ store, instances: () => [instance], hubs: noHubs });
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
      enrollmentGroupId: 'group-off',
      provisioningStatus: 'disabled',
      attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: groupKey, secondaryKey: groupKey } },
    });
  });

  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const register = (registrationId: string, sas: string, scope = idScope) =>
    service.register({ idScope: scope, registrationId, proof: { kind: 'sas', token: sas }, transport: 'https' });

  it('refuses a wrong key, an expired token and a token for another registration id', async () => {
    expect(await errorCode(register('dev-1', token('dev-1', generateSymmetricKey())))).toBe(401002);
    expect(await errorCode(register('dev-1', token('dev-1', deviceKey, 1000)))).toBe(401003);
    // dev-off shares dev-1's key: the signature verifies, the resource does not.
    expect(await errorCode(register('dev-off', token('dev-1', deviceKey)))).toBe(401005);
  });

  it('refuses an unknown ID scope, a malformed token, an invalid id and a device with no proof', async () => {
    expect(await errorCode(register('dev-1', token('dev-1', deviceKey), '0ne99999999'))).toBe(404205);
    expect(await errorCode(register('dev-1', 'Bearer x'))).toBe(401006);
    expect(await errorCode(register('-bad-', token('-bad-', deviceKey)))).toBe(400003);
    expect(await errorCode(service.register({ idScope, registrationId: 'dev-1', proof: { kind: 'none' }, transport: 'mqtt' }))).toBe(401000);
  });

  it('answers a disabled enrollment with the final status disabled, after verifying the proof', async () => {
    const outcome = await register('dev-off', token('dev-off', deviceKey));
    expect(outcome.status).toBe(200);
    expect(outcome.body.status).toBe('disabled');
    expect(outcome.body.registrationState).toMatchObject({ registrationId: 'dev-off', status: 'disabled' });
    expect(await registrations(store, idScope).get('dev-off')).toMatchObject({ status: 'disabled' });
    expect(await errorCode(register('dev-off', token('dev-off', generateSymmetricKey())))).toBe(401002);
  });

  it('recognises a group-derived key and applies the group status', async () => {
    const outcome = await register('grp-dev-9', token('grp-dev-9', deriveDeviceKey(groupKey, 'grp-dev-9')));
    expect(outcome.body.status).toBe('disabled');
    expect(await errorCode(register('grp-dev-9', token('grp-dev-9', groupKey)))).toBe(401002);
  });

  it('answers an unknown operation id with 404', async () => {
    const proof = { kind: 'sas' as const, token: token('dev-1', deviceKey) };
    expect(await errorCode(service.operationStatus({ idScope, registrationId: 'dev-1', operationId: 'nope', proof, transport: 'mqtt' }))).toBe(404204);
  });
});
