import { readFileSync } from 'node:fs';
import { enrollmentGroups } from '@opendps/store';
import { groupDerivedKeys, runDeviceFleet } from '../src/fleet';
import { startOpenDps, type OpenDpsUnderTest, type StoreKind } from './support/in-process';
import { symmetricKeyAttestation } from '../src/service-client';

const GROUP_KEY = Buffer.alloc(32, 3).toString('base64');

describe.each<StoreKind>(['sqlite', 'redis'])('a fleet of 20 devices against OpenDPS on %s', (store) => {
  let dps: OpenDpsUnderTest;
  beforeAll(async () => {
    dps = await startOpenDps({ store });
  }, 30_000);
  afterAll(() => dps?.stop());

  it('creates the symmetric-key enrollment group through the service API, into that store', async () => {
    await dps.service.putEnrollmentGroup('fleet-group', {
      enrollmentGroupId: 'fleet-group',
      attestation: symmetricKeyAttestation(GROUP_KEY, Buffer.alloc(32, 4).toString('base64')),
      provisioningStatus: 'enabled',
    });
    expect(dps.server.store.kind).toBe(store);
    const stored = await enrollmentGroups(dps.server.store, dps.connection.idScope).get('fleet-group');
    expect(stored?.attestation).toEqual({ type: 'symmetricKey', symmetricKey: { primaryKey: GROUP_KEY, secondaryKey: Buffer.alloc(32, 4).toString('base64') } });
    await expect(dps.service.putEnrollmentGroup('bad group id!', { enrollmentGroupId: 'bad group id!' })).rejects.toThrow(/answered 400/);
  });

  it('assigns every device of a symmetric-key group to the hub connection.json lists', async () => {
    if (!dps.target) throw new Error('OpenDPS runs no DPS MQTT listener yet (connection.json endpoints.mqtt is null)');
    const target = dps.target;
    const connection = JSON.parse(readFileSync(dps.server.connectionFile, 'utf8')) as {
      idScope: string;
      instances: Array<{ linkedHubs: Array<{ hostName: string }> }>;
    };
    const hubs = connection.instances[0]?.linkedHubs.map((hub) => hub.hostName) ?? [];
    expect(hubs).toHaveLength(1);

    const result = await runDeviceFleet({
      target,
      deviceKey: groupDerivedKeys(GROUP_KEY),
      count: 20,
      concurrency: 5,
      prefix: `fleet-${store}-`,
      timeoutMs: 20_000,
    });
    expect(result.failures).toEqual([]);
    expect(result.succeeded).toBe(20);
    expect(target.idScope).toBe(connection.idScope);
    for (const device of result.results) {
      expect(device).toMatchObject({ status: 'assigned', assignedHub: hubs[0] });
    }
    expect(new Set(result.results.map((device) => device.deviceId)).size).toBe(20);
  }, 60_000);

  it('refuses a device whose key is not derived from the group key', async () => {
    if (!dps.target) throw new Error('OpenDPS runs no DPS MQTT listener yet (connection.json endpoints.mqtt is null)');
    const result = await runDeviceFleet({
      target: dps.target,
      deviceKey: groupDerivedKeys(Buffer.alloc(32, 9).toString('base64')),
      count: 2,
      concurrency: 2,
      prefix: `forged-${store}-`,
      timeoutMs: 10_000,
    });
    expect(result.succeeded).toBe(0);
    expect(result.failures).toHaveLength(2);
  }, 30_000);
});
