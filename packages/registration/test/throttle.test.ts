import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSasToken, deriveDeviceKey } from '@opendps/attestation';
import { DpsError, generateSymmetricKey, type ProvisioningInstance } from '@opendps/model';
import { createRegistrationThrottle, DpsRegistrationService, type HubDirectory } from '@opendps/registration';
import { SqliteStore, enrollmentGroups } from '@opendps/store';

const instance = (name: string, idScope: string, quotas?: ProvisioningInstance['quotas']): ProvisioningInstance => ({
  name,
  idScope,
  serviceHostName: 'localhost',
  policies: [],
  linkedHubs: [],
  allocationPolicy: 'hashed',
  ...(quotas ? { quotas } : {}),
});

async function refusal(promise: Promise<unknown>): Promise<DpsError | undefined> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof DpsError) return error;
    throw error;
  }
  return undefined;
}

describe('per-instance registration quotas', () => {
  let dir: string;
  let store: SqliteStore;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'opendps-throttle-'));
    store = new SqliteStore(join(dir, 'store.db'));
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses past the quota with 429 and the seconds to the next window, per ID scope, then admits again', async () => {
    let now = 1_700_000_000_250; // 250 ms into a second
    const throttle = createRegistrationThrottle(store, () => now);
    const tiny = instance('tiny', '0ne00000A01', { registrationsPerSecond: 3 });
    const other = instance('other', '0ne00000A02');
    for (let i = 0; i < 3; i++) await throttle.admit(tiny, 'register', `dev-${i}`);
    const refused = await refusal(throttle.admit(tiny, 'register', 'dev-3'));
    expect(refused?.status).toBe(429);
    expect(refused?.errorCode).toBe(429001);
    expect(refused?.info).toEqual({ 'retry-after': '1' });
    // Another instance, and polls of the same instance, are counted apart.
    for (let i = 0; i < 20; i++) await throttle.admit(other, 'register', `dev-${i}`);
    await throttle.admit(tiny, 'poll', 'dev-0');
    // The next one-second window admits again.
    now += 800;
    await throttle.admit(tiny, 'register', 'dev-4');
  });

  it('limits polls separately from registrations, and per device only when the instance asks', async () => {
    let now = 1_700_000_100_000;
    const throttle = createRegistrationThrottle(store, () => now);
    const polls = instance('polls', '0ne00000A03', { registrationsPerSecond: 1, pollsPerSecond: 2 });
    await throttle.admit(polls, 'register', 'a');
    await throttle.admit(polls, 'poll', 'a');
    await throttle.admit(polls, 'poll', 'a');
    expect((await refusal(throttle.admit(polls, 'poll', 'b')))?.status).toBe(429);

    const perDevice = instance('per-device', '0ne00000A04', { devicePollsPer10Seconds: 5 });
    for (let i = 0; i < 5; i++) {
      await throttle.admit(perDevice, 'poll', 'chatty');
      now += 100;
    }
    const refused = await refusal(throttle.admit(perDevice, 'poll', 'chatty'));
    expect(refused?.status).toBe(429);
    // 10 s windows aligned on the epoch: 100.5 s into it there are 9.5 s left, so 10.
    expect(Number(refused?.info?.['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(refused?.info?.['retry-after'])).toBeLessThanOrEqual(10);
    await throttle.admit(perDevice, 'poll', 'quiet');
    // Without the setting nobody is limited per device.
    const unlimited = instance('unlimited', '0ne00000A05');
    for (let i = 0; i < 12; i++) await throttle.admit(unlimited, 'poll', 'chatty');
  });

  it('never throttles 150 registrations in one second with the defaults', async () => {
    const now = 1_700_000_200_000;
    const throttle = createRegistrationThrottle(store, () => now);
    const defaults = instance('defaults', '0ne00000A06');
    for (let i = 0; i < 150; i++) await throttle.admit(defaults, 'register', `dev-${i}`);
  });

  it('is enforced by the registration service before attestation, on its ID scope only', async () => {
    const noHubs: HubDirectory = {
      connector: () => {
        throw new Error('no hub expected');
      },
    };
    const limited = instance('limited', '0ne00000A07', { registrationsPerSecond: 1 });
    const free = instance('free', '0ne00000A08');
    const groupKey = generateSymmetricKey();
    for (const scope of [limited.idScope, free.idScope]) {
      await enrollmentGroups(store, scope).put({
        enrollmentGroupId: 'group',
        attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: groupKey, secondaryKey: groupKey } },
      });
    }
    const service = new DpsRegistrationService({ store, instances: () => [limited, free], hubs: noHubs, answerWithinMs: 0 });
    const sas = (scope: string, id: string) =>
      createSasToken({ resource: `${scope}/registrations/${id}`, key: deriveDeviceKey(groupKey, id), keyName: 'registration', expiry: Math.floor(Date.now() / 1000) + 3600 });
    const register = (scope: string, id: string, token = sas(scope, id)) =>
      service.register({ idScope: scope, registrationId: id, proof: { kind: 'sas', token }, transport: 'https' });

    // Both registrations within one second: a fixed one-second window can hold at most one of them
    // unless the clock crosses a second boundary between the two, so retry until both fall in one.
    let refused: DpsError | undefined;
    for (let attempt = 0; attempt < 5 && !refused; attempt++) {
      const first = await refusal(register(limited.idScope, `a-${attempt}`));
      if (first && first.status !== 429) throw first;
      if (first) continue; // the previous attempt's second call opened this window
      // A token that would fail attestation: the quota answers first.
      refused = await refusal(register(limited.idScope, `b-${attempt}`, 'SharedAccessSignature sr=x&sig=y&se=1&skn=registration'));
    }
    expect(refused?.status).toBe(429);
    expect(refused?.info?.['retry-after']).toBe('1');
    for (let i = 0; i < 5; i++) {
      const outcome = await register(free.idScope, `free-${i}`);
      expect(outcome.status).toBe(202);
    }
  });
});
