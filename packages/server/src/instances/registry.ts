import type { Logger, ProvisioningInstance } from '@opendps/model';
import type { Store } from '@opendps/store';
import { instanceCollection, listAll } from './bootstrap';

/**
 * The in-memory snapshot of provisioning instances that request handlers read synchronously.
 * Refreshed from the store on a timer (other nodes, the admin API may change instances) and on
 * demand after a local change.
 */
export interface InstanceRegistry {
  instances(): readonly ProvisioningInstance[];
  refresh(): Promise<readonly ProvisioningInstance[]>;
  close(): void;
}

export function createInstanceRegistry(
  store: Store,
  initial: readonly ProvisioningInstance[],
  options: { refreshMs?: number; logger: Logger },
): InstanceRegistry {
  const collection = instanceCollection(store);
  let snapshot: readonly ProvisioningInstance[] = Object.freeze([...initial]);
  let closed = false;

  const refresh = async (): Promise<readonly ProvisioningInstance[]> => {
    const stored = await listAll(collection);
    if (!closed && stored.length) snapshot = Object.freeze(keepOrder(stored, snapshot));
    return snapshot;
  };
  const timer = setInterval(() => {
    refresh().catch((error: Error) => options.logger.warn({ err: error.message }, 'instance refresh failed'));
  }, options.refreshMs ?? 5000);
  timer.unref();

  return {
    instances: () => snapshot,
    refresh,
    close: () => {
      closed = true;
      clearInterval(timer);
    },
  };
}

/** Known instances stay in their order (the first is the top-level one in connection.json); new ones follow. */
function keepOrder(stored: ProvisioningInstance[], previous: readonly ProvisioningInstance[]): ProvisioningInstance[] {
  const rank = (instance: ProvisioningInstance): number => {
    const index = previous.findIndex((known) => known.name.toLowerCase() === instance.name.toLowerCase());
    return index === -1 ? previous.length : index;
  };
  return [...stored].sort((a, b) => rank(a) - rank(b));
}
