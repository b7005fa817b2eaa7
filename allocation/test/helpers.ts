import type { LinkedHub, ProvisioningInstance } from '@opendps/model';

export function hub(name: string, allocationWeight = 1, extra: Partial<LinkedHub> = {}): LinkedHub {
  return { name, hostName: `${name}.hubs.example:8884`, allocationWeight, applyAllocationPolicy: true, ...extra };
}

export function instance(linkedHubs: LinkedHub[], allocationPolicy: ProvisioningInstance['allocationPolicy'] = 'hashed'): ProvisioningInstance {
  return { name: 'default', idScope: '0ne0000ABCD', serviceHostName: 'localhost', policies: [], linkedHubs, allocationPolicy };
}

/** The errorCode of what `fn` throws or rejects with, undefined when it succeeds. */
export async function codeOf(fn: () => unknown): Promise<number | undefined> {
  try {
    await fn();
  } catch (error) {
    return (error as { errorCode?: number }).errorCode;
  }
  return undefined;
}
