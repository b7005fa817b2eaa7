import type { ReprovisionPolicy } from '@opendps/model';
import { DEFAULT_REPROVISION_POLICY, reprovision, type ReprovisionInput } from '../src';
import { hub } from './helpers';

const a = hub('hub-a');
const b = hub('hub-b');
const c = hub('hub-c');
const linkedHubs = [a, b, c];

const MIGRATE: ReprovisionPolicy = { updateHubAssignment: true, migrateDeviceData: true };
const RESET: ReprovisionPolicy = { updateHubAssignment: true, migrateDeviceData: false };
const NEVER: ReprovisionPolicy = { updateHubAssignment: false, migrateDeviceData: false };
const NEVER_MIGRATE: ReprovisionPolicy = { updateHubAssignment: false, migrateDeviceData: true };

function decide(extra: Partial<ReprovisionInput> & Pick<ReprovisionInput, 'allocated'>) {
  const decision = reprovision({ linkedHubs, ...extra });
  return { hub: decision.hub.name, action: decision.action, substatus: decision.substatus, from: decision.from?.name };
}

describe('reprovision (docs/service-rest.md §13)', () => {
  it('defaults to re-provision and migrate', () => {
    expect(DEFAULT_REPROVISION_POLICY).toEqual(MIGRATE);
    expect(decide({ allocated: b, current: { hubHostName: a.hostName } })).toEqual(decide({ allocated: b, current: { hubHostName: a.hostName }, policy: MIGRATE }));
  });

  // [policy, current hub, allocated hub, expected hub, action, substatus]
  const matrix: Array<[string, ReprovisionPolicy | undefined, string | undefined, typeof a, string, string, string]> = [
    ['first registration', MIGRATE, undefined, b, 'hub-b', 'initial', 'initialAssignment'],
    ['first registration, never', NEVER, undefined, b, 'hub-b', 'initial', 'initialAssignment'],
    ['migrate to another hub', MIGRATE, 'hub-a', b, 'hub-b', 'migrate', 'deviceDataMigrated'],
    ['migrate, same hub', MIGRATE, 'hub-a', a, 'hub-a', 'keep', 'initialAssignment'],
    ['default policy, another hub', undefined, 'hub-a', c, 'hub-c', 'migrate', 'deviceDataMigrated'],
    ['reset to another hub', RESET, 'hub-a', b, 'hub-b', 'reset', 'deviceDataReset'],
    ['reset on the same hub (factory reset)', RESET, 'hub-a', a, 'hub-a', 'reset', 'deviceDataReset'],
    ['never, allocation says another hub', NEVER, 'hub-a', b, 'hub-a', 'keep', 'initialAssignment'],
    ['never with migrate set, another hub', NEVER_MIGRATE, 'hub-a', c, 'hub-a', 'keep', 'initialAssignment'],
    ['current hub no longer linked', MIGRATE, 'gone', b, 'hub-b', 'initial', 'initialAssignment'],
    ['current hub no longer linked, never', NEVER, 'gone', b, 'hub-b', 'initial', 'initialAssignment'],
  ];
  it.each(matrix)('%s', (_name, policy, current, allocated, expectedHub, action, substatus) => {
    const currentHost = current === undefined ? undefined : current === 'gone' ? 'gone.hubs.example:8884' : hub(current).hostName;
    const decision = decide({ allocated, ...(policy ? { policy } : {}), ...(currentHost ? { current: { hubHostName: currentHost } } : {}) });
    expect(decision).toMatchObject({ hub: expectedHub, action, substatus });
    if (action === 'migrate' || action === 'reset') expect(decision.from).toBe(current);
    else expect(decision.from).toBeUndefined();
  });

  it('matches the current hub by host name in any case, or by hub name', () => {
    expect(decide({ allocated: a, current: { hubHostName: 'HUB-A.HUBS.EXAMPLE:8884' } }).action).toBe('keep');
    expect(decide({ allocated: a, current: { hubHostName: 'hub-a' } }).action).toBe('keep');
  });

  it('keep repeats the current substatus: nothing happened this time', () => {
    expect(decide({ allocated: b, current: { hubHostName: b.hostName, substatus: 'deviceDataMigrated' } }).substatus).toBe('deviceDataMigrated');
    expect(decide({ allocated: a, policy: NEVER, current: { hubHostName: b.hostName, substatus: 'deviceDataReset' } })).toEqual({
      hub: 'hub-b',
      action: 'keep',
      substatus: 'deviceDataReset',
      from: undefined,
    });
  });

  it('reports reprovisionedToInitialAssignment only when the device moves back to the hub of its first assignment', () => {
    const backToA = { allocated: a, current: { hubHostName: b.hostName }, initialHubHostName: a.hostName };
    expect(decide({ ...backToA, policy: MIGRATE })).toEqual({ hub: 'hub-a', action: 'migrate', substatus: 'reprovisionedToInitialAssignment', from: 'hub-b' });
    expect(decide({ ...backToA, policy: RESET })).toEqual({ hub: 'hub-a', action: 'reset', substatus: 'reprovisionedToInitialAssignment', from: 'hub-b' });
    // moving on to a third hub, resetting in place, staying, or no record of the first hub: not "back"
    expect(decide({ ...backToA, allocated: c }).substatus).toBe('deviceDataMigrated');
    expect(decide({ allocated: a, current: { hubHostName: a.hostName }, initialHubHostName: a.hostName, policy: RESET }).substatus).toBe('deviceDataReset');
    expect(decide({ ...backToA, policy: NEVER }).action).toBe('keep');
    expect(decide({ allocated: a, current: { hubHostName: b.hostName } }).substatus).toBe('deviceDataMigrated');
  });

  it("a webhook's initialTwin overrides migration: the new hub is reset to it", () => {
    expect(decide({ allocated: b, current: { hubHostName: a.hostName }, initialTwinOverride: true })).toEqual({
      hub: 'hub-b',
      action: 'reset',
      substatus: 'deviceDataReset',
      from: 'hub-a',
    });
  });

  it('ignores non-boolean policy fields (defaults apply)', () => {
    const policy = { updateHubAssignment: 'no', migrateDeviceData: null } as unknown as ReprovisionPolicy;
    expect(decide({ allocated: b, current: { hubHostName: a.hostName }, policy }).action).toBe('migrate');
  });
});
