import type { LinkedHub, RegistrationSubstatus, ReprovisionPolicy } from '@opendps/model';
import { findHub, hubMatches } from './candidates';

/** The default when an enrollment has none: re-provision and migrate data (docs/service-rest.md §13). */
export const DEFAULT_REPROVISION_POLICY: ReprovisionPolicy = { updateHubAssignment: true, migrateDeviceData: true };

export interface ReprovisionInput {
  /** The hub allocation chose for this registration. */
  allocated: LinkedHub;
  /** The instance's linked hubs, to find the device's current hub. */
  linkedHubs: readonly LinkedHub[];
  /** The device's current assignment; absent on its first registration. */
  current?: { hubHostName: string; substatus?: RegistrationSubstatus };
  /** The hub of the device's first assignment, if the caller recorded it. */
  initialHubHostName?: string;
  /** The enrollment's policy; default {updateHubAssignment: true, migrateDeviceData: true}. */
  policy?: Partial<ReprovisionPolicy>;
  /** A custom webhook returned an initialTwin: it overrides migration (docs/service-rest.md §12). */
  initialTwinOverride?: boolean;
}

/**
 * - `initial`: first assignment (or the old hub is no longer linked): create the device, write the initial twin.
 * - `keep`: stay where it is; nothing on any hub changes.
 * - `migrate`: copy twin (tags, desired, reported), capabilities and device id from `from` to `hub`, delete it from `from`.
 * - `reset`: give `hub` the initial twin; delete the device from `from` when that is another hub.
 */
export type ReprovisionAction = 'initial' | 'keep' | 'migrate' | 'reset';

export interface ReprovisionDecision {
  hub: LinkedHub;
  action: ReprovisionAction;
  substatus: RegistrationSubstatus;
  /** The device's current hub, for migrate and reset. */
  from?: LinkedHub;
}

/**
 * Re-registration rules (docs/service-rest.md §13):
 * - first registration, or the current hub no longer linked: `initial` on the allocated hub, `initialAssignment`;
 * - updateHubAssignment=false ("never"): `keep` on the current hub whatever migrateDeviceData says;
 * - updateHubAssignment + migrateDeviceData: `keep` if the allocated hub is the current one, else `migrate`,
 *   `deviceDataMigrated` (or `reset` when a webhook's initialTwin overrides migration);
 * - updateHubAssignment alone: `reset`, `deviceDataReset`, also on the same hub (a factory reset).
 * `keep` repeats the current substatus (nothing happened), `initialAssignment` when unknown.
 * `reprovisionedToInitialAssignment` replaces the substatus of a migrate or reset that moves the device
 * to another hub which is the hub of its first assignment (`initialHubHostName`); without that record it never appears.
 */
export function reprovision(input: ReprovisionInput): ReprovisionDecision {
  const { allocated, current } = input;
  const from = current ? findHub(input.linkedHubs, current.hubHostName) : undefined;
  if (!current || !from) return { hub: allocated, action: 'initial', substatus: 'initialAssignment' };

  const policy = { ...DEFAULT_REPROVISION_POLICY, ...definedOnly(input.policy) };
  const kept: ReprovisionDecision = { hub: from, action: 'keep', substatus: current.substatus ?? 'initialAssignment' };
  if (!policy.updateHubAssignment) return kept;

  const moves = from !== allocated && !hubMatches(allocated, from.hostName);
  if (policy.migrateDeviceData && !moves) return kept;
  const action: ReprovisionAction = policy.migrateDeviceData && !input.initialTwinOverride ? 'migrate' : 'reset';
  const backHome = moves && input.initialHubHostName !== undefined && hubMatches(allocated, input.initialHubHostName);
  const substatus: RegistrationSubstatus = backHome
    ? 'reprovisionedToInitialAssignment'
    : action === 'migrate'
      ? 'deviceDataMigrated'
      : 'deviceDataReset';
  return { hub: allocated, action, substatus, from };
}

function definedOnly(policy: Partial<ReprovisionPolicy> | undefined): Partial<ReprovisionPolicy> {
  const result: Partial<ReprovisionPolicy> = {};
  if (typeof policy?.updateHubAssignment === 'boolean') result.updateHubAssignment = policy.updateHubAssignment;
  if (typeof policy?.migrateDeviceData === 'boolean') result.migrateDeviceData = policy.migrateDeviceData;
  return result;
}
