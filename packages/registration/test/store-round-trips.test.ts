import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSasToken, deriveDeviceKey } from '@opendps/attestation';
import { BuiltInHub } from '@opendps/hub';
import { generateSymmetricKey, type EnrollmentGroup, type ProvisioningInstance } from '@opendps/model';
import { createRootCa, createServerCertificate } from '@opendps/pki';
import { DpsRegistrationService } from '@opendps/registration';
import { SqliteStore, enrollmentGroups, enrollments } from '@opendps/store';
import { countedStore } from './fixtures';

/**
 * What one registration asks of the DPS store, counted through a wrapper around a real SQLite
 * store (docs/scale.md "Store round trips"). The hub keeps its devices in a store of its own, so
 * only the DPS side is counted here.
 */
const idScope = '0ne0000F1A7';

describe('store round trips per registration', () => {
  let dir: string;
  let store: SqliteStore;
  let hubStore: SqliteStore;
  let hub: BuiltInHub;
  let service: DpsRegistrationService;
  const calls: string[] = [];
  const hubCalls: string[] = [];
  /**
   * The DPS store's writes grouped by the turn of the event loop that issued them: the SQLite store
   * commits each group once (sqlite.ts, group commit), so this is what one registration costs in
   * commits when it is alone.
   */
  let commits: string[][] = [];
  let open: string[] | undefined;
  const WRITES = new Set(['increment', 'put', 'delete']);
  const counting = (call: string): void => {
    calls.push(call);
    if (!WRITES.has(call.slice(call.indexOf('.') + 1))) return;
    if (!open) {
      const group: string[] = [];
      commits.push(group);
      open = group;
      setImmediate(() => (open = undefined));
    }
    open.push(call);
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'opendps-round-trips-'));
    store = new SqliteStore(join(dir, 'dps.db'));
    hubStore = new SqliteStore(join(dir, 'hub.db'));
    const ca = createRootCa({ commonName: 'round trips test CA' });
    const server = createServerCertificate(ca, ['localhost']);
    hub = new BuiltInHub({ name: 'hub-a', host: 'localhost', port: 0, listenAddress: '127.0.0.1', tls: { cert: server.certificatePem, key: server.privateKeyPem }, store: countedStore(hubStore, hubCalls) });
    await hub.start();
    const instance: ProvisioningInstance = {
      name: 'default',
      idScope,
      serviceHostName: 'localhost',
      policies: [],
      allocationPolicy: 'hashed',
      linkedHubs: [{ name: 'hub-a', hostName: hub.hostName, builtin: { port: hub.port }, allocationWeight: 1, applyAllocationPolicy: true }],
    };
    service = new DpsRegistrationService({ store: countedStore(store, { push: counting }), instances: () => [instance], hubs: { connector: () => hub } });
  });

  afterAll(async () => {
    await hub.stop();
    await store.close();
    await hubStore.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function register(registrationId: string, key: string): Promise<{ status: string; calls: string[]; commits: string[][]; group?: string }> {
    const token = createSasToken({ resource: `${idScope}/registrations/${registrationId}`, key, keyName: 'registration', expiry: Math.floor(Date.now() / 1000) + 600 });
    calls.length = 0;
    hubCalls.length = 0;
    commits = [];
    const outcome = await service.register({ idScope, registrationId, proof: { kind: 'sas', token }, transport: 'mqtt' });
    const group = outcome.body.registrationState?.symmetricKey?.enrollmentGroupId;
    return { status: outcome.body.status, calls: [...calls], commits, ...(group ? { group } : {}) };
  }

  const group = (enrollmentGroupId: string, key: string): EnrollmentGroup => ({
    enrollmentGroupId,
    attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: key } },
  });

  it('an individual enrollment: quota, enrollment, previous state, the new state and its trace', async () => {
    const key = generateSymmetricKey();
    await enrollments(store, idScope).put({ registrationId: 'solo-1', attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: key } } });
    const first = await register('solo-1', key);
    expect(first.status).toBe('assigned');
    // Answered within answer-within: the final operation record is the only operation write (no
    // `assigning` record first), so the operationId handed out can be polled on any node.
    expect(first.calls).toEqual(['increment', 'enrollments.get', 'registrations.get', 'registrations.put', 'registrationTraces.put', 'operations.put']);
    // Two commits: the quota, then (after the hub has the device) the state, its trace and the
    // operation record, issued in one turn.
    expect(first.commits).toEqual([['increment'], ['registrations.put', 'registrationTraces.put', 'operations.put']]);
    // The built-in hub: the device looked up by the pipeline and not found, then created as one
    // document (identity and twin) by a conditional create, without reading it again.
    expect(hubCalls).toEqual(['devices.get', 'devices.put']);
    // Registering again: found by the pipeline, read again by the upsert for its compare-and-set.
    const again = await register('solo-1', key);
    expect(again.status).toBe('assigned');
    expect(hubCalls).toEqual(['devices.get', 'devices.get', 'devices.put']);
  });

  it('a group device: the first registration scans the groups, the next one reads only the group it came through', async () => {
    const key = generateSymmetricKey();
    for (const id of ['grp-a', 'grp-b', 'grp-c']) await enrollmentGroups(store, idScope).put(group(id, id === 'grp-b' ? key : generateSymmetricKey()));
    const first = await register('member-1', deriveDeviceKey(key, 'member-1'));
    expect(first).toMatchObject({ status: 'assigned', group: 'grp-b' });
    // The registration state is read once, by the attestation (no remembered group in it), and
    // not again by the assignment. This node's copy of the group keys is built (version, then every
    // symmetric-key group), and the group the search names is read and verified.
    expect(first.calls).toEqual([
      'increment',
      'enrollments.get',
      'registrations.get',
      'enrollmentGroups.version',
      'enrollmentGroups.findByIndex',
      'enrollmentGroups.get',
      'registrations.put',
      'registrationTraces.put',
      'operations.put',
    ]);
    expect(first.commits).toEqual([['increment'], ['registrations.put', 'registrationTraces.put', 'operations.put']]);

    const again = await register('member-1', deriveDeviceKey(key, 'member-1'));
    expect(again).toMatchObject({ status: 'assigned', group: 'grp-b' });
    expect(again.calls).not.toContain('enrollmentGroups.findByIndex');
    expect(again.calls).toEqual([
      'increment',
      'enrollments.get',
      'registrations.get',
      'enrollmentGroups.get',
      'registrations.put',
      'registrationTraces.put',
      'operations.put',
    ]);
  });

  it('the remembered group is verified again: new keys, or the group gone, send the device back to the scan', async () => {
    const oldKey = generateSymmetricKey();
    await enrollmentGroups(store, idScope).put(group('rot-1', oldKey));
    expect(await register('member-2', deriveDeviceKey(oldKey, 'member-2'))).toMatchObject({ status: 'assigned', group: 'rot-1' });

    // The operator moves the old key to another group and gives rot-1 a new one.
    await enrollmentGroups(store, idScope).put(group('rot-1', generateSymmetricKey()));
    await enrollmentGroups(store, idScope).put(group('rot-2', oldKey));
    const moved = await register('member-2', deriveDeviceKey(oldKey, 'member-2'));
    expect(moved).toMatchObject({ status: 'assigned', group: 'rot-2' });
    expect(moved.calls).toContain('enrollmentGroups.findByIndex');

    // rot-2 deleted: its devices' tokens match no group any more.
    await enrollmentGroups(store, idScope).delete('rot-2');
    await expect(register('member-2', deriveDeviceKey(oldKey, 'member-2'))).rejects.toMatchObject({ errorCode: 401002 });
  });

  it('a remembered group that is no longer symmetric-key is not trusted for its old keys', async () => {
    const key = generateSymmetricKey();
    await enrollmentGroups(store, idScope).put(group('kind-1', key));
    expect(await register('member-3', deriveDeviceKey(key, 'member-3'))).toMatchObject({ status: 'assigned', group: 'kind-1' });
    const stored = (await enrollmentGroups(store, idScope).get('kind-1'))!;
    // A document whose type says x509 but still carries the old keys (as a careless migration might leave it).
    await store.collection<EnrollmentGroup>(idScope, 'enrollmentGroups').put('kind-1', {
      ...stored,
      attestation: { type: 'x509', symmetricKey: stored.attestation.symmetricKey },
    } as EnrollmentGroup, { indexes: { attestationType: ['x509'] } });
    await expect(register('member-3', deriveDeviceKey(key, 'member-3'))).rejects.toMatchObject({ errorCode: 401002 });
  });
});
