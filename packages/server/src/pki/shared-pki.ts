import { isDpsError } from '@opendps/model';
import type { Issued } from '@opendps/pki';
import type { Store } from '@opendps/store';
import type { SharedPki } from './dev-pki';

type Stored = { ca: Issued; server: Issued };

/**
 * The development CA and server certificate every node on one store uses (scope `global`,
 * collection `pki`), created once: the first node's put wins, the others read it.
 */
export function storeSharedPki(store: Store): SharedPki {
  const collection = store.collection<Stored>('global', 'pki');
  const ID = 'development';
  return {
    get: async () => (await collection.get(ID))?.value,
    createIfAbsent: async (offer) => {
      try {
        await collection.put(ID, offer, { ifNoneMatch: '*' });
        return offer;
      } catch (error) {
        const winner = isDpsError(error) && error.status === 409 ? await collection.get(ID) : undefined;
        if (!winner) throw error;
        return winner.value;
      }
    },
  };
}
