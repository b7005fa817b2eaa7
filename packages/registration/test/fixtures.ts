import type { LinkedHub, ProvisioningInstance } from '@opendps/model';

/** A provisioning instance for these tests: `default`, hashed allocation, no policies; `fields` override. */
export function testInstance(idScope: string, fields: Partial<ProvisioningInstance> = {}): ProvisioningInstance {
  return { name: 'default', idScope, serviceHostName: 'localhost', policies: [], linkedHubs: [], allocationPolicy: 'hashed', ...fields };
}

/** One hub that applies the allocation policy (tests whose hub directory answers any host name). */
export const ONE_HUB: LinkedHub[] = [{ name: 'hub-1', hostName: 'localhost:8883', allocationWeight: 1, applyAllocationPolicy: true }];
