import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSasToken } from '@opendps/attestation';
import { BuiltInHub } from '@opendps/hub';
import { generateSymmetricKey } from '@opendps/model';
import { DpsRegistrationService, type HubDirectory, type RegistrationOutcome, type RegistrationServiceOptions } from '@opendps/registration';
import { SqliteStore, enrollments } from '@opendps/store';
import { ONE_HUB, testInstance } from './fixtures';

/**
 * The service's clock and durations are options: leases, SAS expiry and quota windows follow an
 * injected clock, so these tests move it instead of waiting.
 */
const idScope = '0ne0000C10C';
const instance = testInstance(idScope, { linkedHubs: ONE_HUB, quotas: { registrationsPerSecond: 2 } });
const keys = new Map<string, string>();

let dir: string;
let store: SqliteStore;
let hub: BuiltInHub;
/** Fake time, epoch ms. */
let now = Date.now();
/** Registration ids in the order the hub was asked about them (one entry per allocation run). */
let hubCalls: string[] = [];
/** Run when the hub is asked about a device, before it answers (a test may hold it there). */
let onHubCall: (registrationId: string) => Promise<void> = async () => undefined;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'opendps-timing-'));
  store = new SqliteStore(join(dir, 'store.db'));
  // Never started: the service only uses its registry (the store) and its host name.
  hub = new BuiltInHub({ name: 'hub-1', host: 'localhost', port: 8883, tls: { cert: '', key: '' }, store });
  for (const id of ['lease-1', 'lease-2', 'skew-1', 'quota-1', 'quota-2', 'quota-3']) {
    const key = generateSymmetricKey();
    keys.set(id, key);
    await enrollments(store, idScope).put({ registrationId: id, attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: generateSymmetricKey() } } });
  }
});

afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  hubCalls = [];
  onHubCall = async () => undefined;
});

const hubs: HubDirectory = {
  connector: () => ({
    get hostName() {
      return hub.hostName;
    },
    getDevice: async (deviceId: string) => {
      hubCalls.push(deviceId);
      await onHubCall(deviceId);
      return hub.getDevice(deviceId);
    },
    upsertDevice: (identity, twin) => hub.upsertDevice(identity, twin),
    deleteDevice: (deviceId) => hub.deleteDevice(deviceId),
  }),
};

const service = (options: Partial<RegistrationServiceOptions> = {}) =>
  new DpsRegistrationService({ store, instances: () => [instance], hubs, now: () => now, ...options });

/** A SAS valid for an hour of real time (device clocks are not ours to fake). */
const proof = (registrationId: string, expiry = Math.floor(Date.now() / 1000) + 3600) => ({
  kind: 'sas' as const,
  token: createSasToken({ resource: `${idScope}/registrations/${registrationId}`, key: keys.get(registrationId)!, keyName: 'registration', expiry }),
});

const register = (svc: DpsRegistrationService, registrationId: string, expiry?: number) =>
  svc.register({ idScope, registrationId, proof: proof(registrationId, expiry), transport: 'https' });

const poll = (svc: DpsRegistrationService, registrationId: string, first: RegistrationOutcome) =>
  svc.operationStatus({ idScope, registrationId, operationId: first.body.operationId, proof: proof(registrationId), transport: 'https' });

async function refusal(promise: Promise<unknown>): Promise<{ status?: number; errorCode?: number }> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!error) throw new Error('expected a refusal');
  return error as { status?: number; errorCode?: number };
}

/** A promise and its resolver: the hub held until the test lets it go. */
function gate(): { wait: Promise<void>; open(): void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

describe('operation leases on the injected clock', () => {
  it('a lease starts when the in-flight record is written: a lease shorter than answer-within is not stored expired', async () => {
    const held = gate();
    // The hub is slow: the fake clock passes twice the lease while the service waits to answer.
    onHubCall = async () => {
      now += 2000;
      await held.wait;
    };
    const svc = service({ answerWithinMs: 20, leaseMs: 1000 });
    const first = await register(svc, 'lease-1');
    expect(first.status).toBe(202);
    // A poll right away finds a live lease: the work is not started a second time.
    const polled = await poll(svc, 'lease-1', first);
    expect(polled.status).toBe(202);
    expect(hubCalls).toEqual(['lease-1']);
    held.open();
  });

  it('a poll after the lease expired on the clock takes the work over (another node, same store)', async () => {
    const held = gate();
    onHubCall = async () => {
      if (hubCalls.length === 1) await held.wait;
    };
    // A minute's lease: its renewal timer (every 20 s of real time) never runs during this test.
    const nodeA = service({ answerWithinMs: 0, leaseMs: 60_000, nodeId: 'node-a' });
    const nodeB = service({ leaseMs: 60_000, nodeId: 'node-b' });
    const first = await register(nodeA, 'lease-2');
    expect(first.status).toBe(202);
    expect((await poll(nodeB, 'lease-2', first)).status).toBe(202);
    now += 59_000;
    expect((await poll(nodeB, 'lease-2', first)).status).toBe(202);
    expect(hubCalls).toEqual(['lease-2']);
    now += 1001;
    const taken = await poll(nodeB, 'lease-2', first);
    expect(taken).toMatchObject({ status: 200, body: { status: 'assigned', registrationState: { registrationId: 'lease-2', assignedHub: 'localhost:8883' } } });
    expect(hubCalls).toEqual(['lease-2', 'lease-2']);
    held.open();
  });
});

describe('SAS expiry and quota windows on the injected clock', () => {
  it('a token is accepted until its expiry plus the configured skew, measured on the clock', async () => {
    const expiry = Math.floor(now / 1000) + 10;
    const strict = service({ sasSkewSeconds: 0 });
    expect((await register(strict, 'skew-1', expiry)).status).toBe(200);
    now += 10_000;
    expect(await refusal(register(strict, 'skew-1', expiry))).toMatchObject({ status: 401, errorCode: 401003 });
    // The default skew (300 s) still takes it.
    expect((await register(service(), 'skew-1', expiry)).status).toBe(200);
    now += 300_000;
    expect(await refusal(register(service(), 'skew-1', expiry))).toMatchObject({ status: 401, errorCode: 401003 });
  });

  it('the registration quota counts per second of the clock', async () => {
    // The quota counters live in the store, on the real clock's TTL; windows are keyed by the fake second.
    now = Math.ceil(now / 1000) * 1000 + 1_000_000;
    const svc = service();
    expect((await register(svc, 'quota-1')).status).toBe(200);
    expect((await register(svc, 'quota-2')).status).toBe(200);
    expect(await refusal(register(svc, 'quota-3'))).toMatchObject({ status: 429, errorCode: 429001 });
    now += 1000;
    expect((await register(svc, 'quota-3')).status).toBe(200);
  });
});
