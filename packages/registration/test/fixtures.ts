import type { Collection, Store } from '@opendps/store';
import type { LinkedHub, ProvisioningInstance } from '@opendps/model';

/** A provisioning instance for these tests: `default`, hashed allocation, no policies; `fields` override. */
export function testInstance(idScope: string, fields: Partial<ProvisioningInstance> = {}): ProvisioningInstance {
  return { name: 'default', idScope, serviceHostName: 'localhost', policies: [], linkedHubs: [], allocationPolicy: 'hashed', ...fields };
}

/** One hub that applies the allocation policy (tests whose hub directory answers any host name). */
export const ONE_HUB: LinkedHub[] = [{ name: 'hub-1', hostName: 'localhost:8883', allocationWeight: 1, applyAllocationPolicy: true }];

const COLLECTION_METHODS = ['get', 'put', 'delete', 'list', 'findByIndex', 'count', 'version'] as const;

/**
 * The real store with some of a collection's methods replaced (to count calls, fail writes, or watch
 * what is written); every other method, collection and the counters pass through untouched.
 */
export function storeWith(inner: Store, override: <T>(name: string, collection: Collection<T>) => Partial<Collection<T>> | undefined): Store {
  return {
    kind: inner.kind,
    collection<T>(scope: string, name: string): Collection<T> {
      const collection = inner.collection<T>(scope, name);
      const replaced = override(name, collection);
      if (!replaced) return collection;
      const passed = Object.fromEntries(COLLECTION_METHODS.map((method) => [method, (collection[method] as (...args: unknown[]) => unknown).bind(collection)]));
      return { ...passed, ...replaced } as Collection<T>;
    },
    increment: (key, windowSeconds) => inner.increment(key, windowSeconds),
    close: () => inner.close(),
  };
}

/** Every call to the store, as `collection.method` (or `increment`), in order. */
export function countedStore(inner: Store, calls: { push(call: string): unknown }): Store {
  const counting = storeWith(inner, (name, collection) =>
    Object.fromEntries(
      COLLECTION_METHODS.map((method) => [
        method,
        (...args: unknown[]) => {
          calls.push(`${name}.${method}`);
          return (collection[method] as (...a: unknown[]) => unknown).apply(collection, args);
        },
      ]),
    ),
  );
  return {
    ...counting,
    increment(key, windowSeconds) {
      calls.push('increment');
      return inner.increment(key, windowSeconds);
    },
  };
}
