import type { EnrollmentGroup, IndividualEnrollment } from '@opendps/model';
import { ConfiguredLatencySource, allocate, allocationPolicyOf, candidateHubs, chooseHashed, ipv4ToNumber, type AllocationInput } from '../src';
import { codeOf, hub, instance } from './helpers';

const a = hub('hub-a', 1);
const b = hub('hub-b', 2);
const c = hub('hub-c', 7);
const spare = hub('hub-spare', 1, { applyAllocationPolicy: false });
const linked = instance([a, b, c, spare]);

function individual(extra: Partial<IndividualEnrollment> = {}): IndividualEnrollment {
  return { registrationId: 'dev-1', attestation: { type: 'symmetricKey' }, ...extra };
}

function group(extra: Partial<EnrollmentGroup> = {}): EnrollmentGroup {
  return { enrollmentGroupId: 'group-1', attestation: { type: 'symmetricKey' }, ...extra };
}

function input(extra: Partial<AllocationInput>): AllocationInput {
  return { instance: linked, enrollment: individual(), registrationId: 'dev-1', attestation: { type: 'symmetricKey' }, ...extra };
}

describe('candidateHubs', () => {
  it('is every hub that applies the policy when the enrollment names none', () => {
    expect(candidateHubs(linked, individual()).map((h) => h.name)).toEqual(['hub-a', 'hub-b', 'hub-c']);
    expect(candidateHubs(linked, group()).map((h) => h.name)).toEqual(['hub-a', 'hub-b', 'hub-c']);
  });

  it('is the named hubs, by host name or hub name in any case, including one that does not apply the policy', () => {
    expect(candidateHubs(linked, individual({ iotHubs: ['HUB-A.hubs.example:8884', 'hub-spare'] })).map((h) => h.name)).toEqual([
      'hub-a',
      'hub-spare',
    ]);
    expect(candidateHubs(linked, group({ iotHubHostName: 'Hub-C' })).map((h) => h.name)).toEqual(['hub-c']);
  });

  it('refuses with 400208 when no named hub is linked, or no hub applies the policy', async () => {
    expect(await codeOf(() => candidateHubs(linked, individual({ iotHubs: ['gone.example'] })))).toBe(400208);
    expect(await codeOf(() => candidateHubs(instance([spare]), individual()))).toBe(400208);
    expect(await codeOf(() => candidateHubs(instance([]), individual()))).toBe(400208);
  });
});

describe('allocate: policies and precedence', () => {
  it('uses the enrollment policy over the instance default', () => {
    expect(allocationPolicyOf(instance([a], 'geoLatency'), individual())).toBe('geoLatency');
    expect(allocationPolicyOf(instance([a], 'geoLatency'), individual({ allocationPolicy: 'static' }))).toBe('static');
  });

  it('hashed picks the weighted rendezvous hub among the candidates and nothing else', async () => {
    for (let i = 0; i < 200; i++) {
      const registrationId = `device-${i}`;
      const result = await allocate(input({ registrationId }));
      expect(result.policy).toBe('hashed');
      expect(result.hub).toBe(chooseHashed([a, b, c], registrationId));
    }
    const named = await allocate(input({ enrollment: individual({ iotHubs: ['hub-spare'] }) }));
    expect(named.hub).toBe(spare);
  });

  it('static takes the one named hub, also as the instance default', async () => {
    const result = await allocate(input({ enrollment: individual({ allocationPolicy: 'static', iotHubHostName: 'hub-b.hubs.example:8884' }) }));
    expect(result).toEqual({ policy: 'static', hub: b, why: { rule: 'static' } });
    const byDefault = await allocate(input({ instance: instance([a, b], 'static'), enrollment: individual({ iotHubs: ['hub-a'] }) }));
    expect(byDefault.hub).toBe(a);
  });

  it('static refuses anything but exactly one candidate with 400208', async () => {
    expect(await codeOf(() => allocate(input({ instance: instance([a, b, c], 'static') })))).toBe(400208);
    expect(await codeOf(() => allocate(input({ enrollment: individual({ allocationPolicy: 'static', iotHubs: ['hub-a', 'hub-b'] }) })))).toBe(
      400208,
    );
    expect(await codeOf(() => allocate(input({ enrollment: individual({ allocationPolicy: 'static', iotHubs: ['nowhere'] }) })))).toBe(400208);
  });

  it('custom without a definition or without a webhook client is a coded error', async () => {
    expect(await codeOf(() => allocate(input({ enrollment: individual({ allocationPolicy: 'custom' }) })))).toBe(400012);
    const custom = individual({ allocationPolicy: 'custom', customAllocationDefinition: { webhookUrl: 'https://x.example/', apiVersion: '2021-10-01' } });
    expect(await codeOf(() => allocate(input({ enrollment: custom })))).toBe(502201);
  });
});

describe('geoLatency with the configured latency map', () => {
  const latency = new ConfiguredLatencySource({
    networks: { '10.0.0.0/8': 'westeurope', '10.20.0.0/16': 'eastus', '192.168.1.7/32': 'tie', '172.16.0.0/12': 'nowhere-listed' },
    table: {
      westeurope: { 'hub-a': 5, 'hub-b': 40, 'hub-c': 90 },
      // host names work as keys too
      eastus: { 'hub-a.hubs.example:8884': 80, 'hub-b': 70, 'hub-c': 12 },
      tie: { 'hub-a': 20, 'hub-b': 20, 'hub-c': 35 },
    },
  });
  const geo = (registrationId: string, clientAddress: string | undefined) =>
    allocate(input({ registrationId, clientAddress, latency, instance: instance([a, b, c, spare], 'geoLatency') }));

  it('maps IPv4 and IPv4-mapped IPv6 addresses to locations, longest prefix first', () => {
    expect(latency.locationOf('10.1.2.3')).toBe('westeurope');
    expect(latency.locationOf('::ffff:10.1.2.3')).toBe('westeurope');
    expect(latency.locationOf('::FFFF:10.20.9.9')).toBe('eastus');
    expect(latency.locationOf('192.168.1.7')).toBe('tie');
    expect(latency.locationOf('192.168.1.8')).toBeUndefined();
    expect(latency.locationOf('2001:db8::1')).toBeUndefined();
    expect(latency.locationOf('not-an-ip')).toBeUndefined();
    expect(latency.locationOf(undefined)).toBeUndefined();
    expect(latency.locationOf('::ffff:a14:101')).toBe('eastus'); // 10.20.1.1 in hex form
    expect(ipv4ToNumber('256.1.1.1')).toBeUndefined();
    expect(ipv4ToNumber('10.1.2')).toBeUndefined();
  });

  it('chooses the lowest-latency hub for the device location, whatever its id', async () => {
    for (let i = 0; i < 50; i++) {
      expect((await geo(`device-${i}`, '10.1.2.3')).hub).toBe(a);
      expect((await geo(`device-${i}`, '::ffff:10.1.2.3')).hub).toBe(a);
      expect((await geo(`device-${i}`, '10.20.0.1')).hub).toBe(c);
    }
  });

  it('falls back to the weighted hash over all candidates for unknown locations and locations without figures', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const registrationId = `device-${i}`;
      for (const address of ['2001:db8::1', '8.8.8.8', '172.16.4.4', undefined]) {
        const { hub: chosen } = await geo(registrationId, address);
        expect(chosen).toBe(chooseHashed([a, b, c], registrationId));
        seen.add(chosen.name);
      }
    }
    expect([...seen].sort()).toEqual(['hub-a', 'hub-b', 'hub-c']);
  });

  it('breaks ties with the weighted hash among the tied hubs only', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const registrationId = `device-${i}`;
      const { hub: chosen } = await geo(registrationId, '192.168.1.7');
      expect(chosen).toBe(chooseHashed([a, b], registrationId));
      seen.add(chosen.name);
    }
    expect([...seen].sort()).toEqual(['hub-a', 'hub-b']);
  });

  it('uses the hash when no latency source is given or the source fails', async () => {
    const base = input({ registrationId: 'device-7', clientAddress: '10.1.2.3', instance: instance([a, b, c], 'geoLatency') });
    expect((await allocate(base)).hub).toBe(chooseHashed([a, b, c], 'device-7'));
    const failing = { latencies: () => Promise.reject(new Error('probe down')) };
    expect((await allocate({ ...base, latency: failing })).hub).toBe(chooseHashed([a, b, c], 'device-7'));
  });

  it('refuses a bad latency config with a coded error', async () => {
    expect(await codeOf(() => new ConfiguredLatencySource({ networks: { '10.0.0.0/33': 'x' } }))).toBe(400002);
    expect(await codeOf(() => new ConfiguredLatencySource({ networks: { 'fe80::/10': 'x' } }))).toBe(400002);
    expect(await codeOf(() => new ConfiguredLatencySource({ table: { x: { 'hub-a': -1 } } }))).toBe(400002);
    expect(await codeOf(() => new ConfiguredLatencySource({ table: { x: 'fast' as never } }))).toBe(400002);
  });
});
