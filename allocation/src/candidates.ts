import { Errors, hubMatches, type EnrollmentGroup, type IndividualEnrollment, type LinkedHub, type ProvisioningInstance } from '@opendps/model';

export { hubMatches };

/** The hub among `hubs` that `reference` names, if any. */
export function findHub(hubs: readonly LinkedHub[], reference: string): LinkedHub | undefined {
  return hubs.find((hub) => hubMatches(hub, reference));
}

/** The hubs an enrollment names itself (`iotHubs`, then `iotHubHostName`), as written. */
export function namedHubs(enrollment: IndividualEnrollment | EnrollmentGroup): string[] {
  return [...(enrollment.iotHubs ?? []), ...(enrollment.iotHubHostName ? [enrollment.iotHubHostName] : [])];
}

/**
 * The hubs a device may be allocated to (docs/service-rest.md §11): the linked hubs the enrollment names
 * (a hub with applyAllocationPolicy=false may still be named), else every linked hub that applies
 * the allocation policy. Instance order is kept; names of hubs no longer linked are skipped.
 */
export function candidateHubs(
  instance: ProvisioningInstance,
  enrollment: IndividualEnrollment | EnrollmentGroup,
): LinkedHub[] {
  const named = namedHubs(enrollment);
  const candidates = named.length
    ? instance.linkedHubs.filter((hub) => named.some((reference) => hubMatches(hub, reference)))
    : instance.linkedHubs.filter((hub) => hub.applyAllocationPolicy);
  if (candidates.length === 0) {
    throw Errors.noHubForDevice(
      named.length
        ? `None of the IoT hubs the enrollment names (${named.join(', ')}) is linked to instance '${instance.name}'.`
        : `Instance '${instance.name}' has no linked IoT hub that applies the allocation policy.`,
    );
  }
  return candidates;
}
