import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSasToken } from '@opendps/attestation';
import { BuiltInHub } from '@opendps/hub';
import { generateSymmetricKey, type IndividualEnrollment, type ProvisioningInstance, type ReprovisionPolicy } from '@opendps/model';
import { createRootCa, createServerCertificate } from '@opendps/pki';
import { DpsRegistrationService } from '@opendps/registration';
import { SqliteStore, enrollments } from '@opendps/store';

const idScope = '0ne0000C0DE';

/**
 * Reprovisioning through the real pipeline and two real built-in hubs: the enrollment's hub list
 * changes between registrations and its reprovision policy decides what happens to the device.
 */
describe('reprovisioning', () => {
  let dir: string;
  let store: SqliteStore;
  const hubs: Record<'a' | 'b', BuiltInHub> = {} as never;
  let service: DpsRegistrationService;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'opendps-reprovision-'));
    store = new SqliteStore(join(dir, 'store.db'));
    const ca = createRootCa({ commonName: 'reprovision test CA' });
    const server = createServerCertificate(ca, ['localhost']);
    for (const name of ['a', 'b'] as const) {
      hubs[name] = new BuiltInHub({ name: `hub-${name}`, host: 'localhost', port: 0, listenAddress: '127.0.0.1', tls: { cert: server.certificatePem, key: server.privateKeyPem }, store });
      await hubs[name].start();
    }
    const instance: ProvisioningInstance = {
      name: 'default',
      idScope,
      serviceHostName: 'localhost',
      policies: [],
      allocationPolicy: 'hashed',
      linkedHubs: (['a', 'b'] as const).map((name) => ({
        name: `hub-${name}`,
        hostName: hubs[name].hostName,
        builtin: { port: hubs[name].port },
        allocationWeight: 1,
        applyAllocationPolicy: true,
      })),
    };
    service = new DpsRegistrationService({
      store,
      instances: () => [instance],
      hubs: { connector: (hub) => (hub.name === 'hub-a' ? hubs.a : hubs.b) },
    });
  });

  afterAll(async () => {
    await hubs.a.stop();
    await hubs.b.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function enroll(registrationId: string, key: string, hub: 'a' | 'b', reprovisionPolicy?: ReprovisionPolicy): Promise<void> {
    const enrollment: IndividualEnrollment = {
      registrationId,
      attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: key } },
      iotHubs: [hubs[hub].hostName],
      initialTwin: { tags: { site: 'lab' }, properties: { desired: { interval: 30 } } },
      ...(reprovisionPolicy ? { reprovisionPolicy } : {}),
    };
    await enrollments(store, idScope).put(enrollment);
  }

  async function register(registrationId: string, key: string) {
    const token = createSasToken({ resource: `${idScope}/registrations/${registrationId}`, key, keyName: 'registration', expiry: Math.floor(Date.now() / 1000) + 600 });
    const outcome = await service.register({ idScope, registrationId, proof: { kind: 'sas', token }, transport: 'https' });
    expect(outcome.body.status).toBe('assigned');
    return outcome.body.registrationState!;
  }

  /** First registration on hub a, then the device's own data: a reported property and a changed desired one. */
  async function provisionWithData(registrationId: string, key: string, policy?: ReprovisionPolicy) {
    await enroll(registrationId, key, 'a', policy);
    const first = await register(registrationId, key);
    expect(first).toMatchObject({ assignedHub: hubs.a.hostName, substatus: 'initialAssignment' });
    await hubs.a.registry.patchReported(registrationId, { firmware: '1.2' });
    await hubs.a.updateDesired(registrationId, { interval: 60 });
    await enroll(registrationId, key, 'b', policy);
  }

  it('migrates tags, desired and reported properties to the new hub and removes the device from the old one', async () => {
    const key = generateSymmetricKey();
    await provisionWithData('migrating', key);
    const state = await register('migrating', key);
    expect(state).toMatchObject({ assignedHub: hubs.b.hostName, substatus: 'deviceDataMigrated' });
    const moved = await hubs.b.getDevice('migrating');
    expect(moved?.twin.tags).toEqual({ site: 'lab' });
    expect(moved?.twin.properties.desired).toMatchObject({ interval: 60 });
    expect(moved?.twin.properties.reported).toMatchObject({ firmware: '1.2' });
    expect(await hubs.a.getDevice('migrating')).toBeUndefined();
    // Registering again is idempotent: same hub, nothing moves.
    expect(await register('migrating', key)).toMatchObject({ assignedHub: hubs.b.hostName });
    expect((await hubs.b.getDevice('migrating'))?.twin.properties.reported).toMatchObject({ firmware: '1.2' });
  });

  it('resets to the initial twin on the new hub and removes the device from the old one', async () => {
    const key = generateSymmetricKey();
    await provisionWithData('resetting', key, { updateHubAssignment: true, migrateDeviceData: false });
    const state = await register('resetting', key);
    expect(state).toMatchObject({ assignedHub: hubs.b.hostName, substatus: 'deviceDataReset' });
    const reset = await hubs.b.getDevice('resetting');
    expect(reset?.twin.properties.desired).toMatchObject({ interval: 30 });
    expect(reset?.twin.properties.reported).not.toHaveProperty('firmware');
    expect(await hubs.a.getDevice('resetting')).toBeUndefined();
  });

  it('never moves a device whose policy says so', async () => {
    const key = generateSymmetricKey();
    await provisionWithData('staying', key, { updateHubAssignment: false, migrateDeviceData: false });
    const state = await register('staying', key);
    expect(state.assignedHub).toBe(hubs.a.hostName);
    expect((await hubs.a.getDevice('staying'))?.twin.properties.reported).toMatchObject({ firmware: '1.2' });
    expect(await hubs.b.getDevice('staying')).toBeUndefined();
  });
});
