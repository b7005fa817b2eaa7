import { GroupKeySearch } from '@opendps/attestation';
import { enrollmentGroups, type Store } from '@opendps/store';

/**
 * Each node's copy of an instance's symmetric-key group keys, ready to search (GroupKeySearch),
 * for the first registration of a group device, whose token does not name its group. Before each
 * use, one small read of the groups' version (replaced by every group write, in the same atomic
 * step: store.ts `Collection.version`) says whether the copy is current, so a group written on any
 * node is seen by every node's next registration. The copy is rebuilt from the store when it is not.
 */
interface Copy {
  version: string | undefined;
  search: Promise<GroupKeySearch>;
}

const copies = new WeakMap<Store, Map<string, Copy>>();

export async function symmetricKeyGroupSearch(store: Store, idScope: string): Promise<GroupKeySearch> {
  const groups = enrollmentGroups(store, idScope);
  const version = await groups.version();
  let perScope = copies.get(store);
  if (!perScope) copies.set(store, (perScope = new Map()));
  const copy = perScope.get(idScope);
  if (copy && copy.version === version) return copy.search;
  // Read after the version: a write in between makes the copy newer than its label, never older,
  // and the next registration reads it again.
  const search = groups.findByAttestationType('symmetricKey').then((found) => {
    const keyed = found.flatMap((group) => {
      const keys = group.attestation.type === 'symmetricKey' ? group.attestation.symmetricKey : undefined;
      return keys ? [{ enrollmentGroupId: group.enrollmentGroupId, primaryKey: keys.primaryKey, secondaryKey: keys.secondaryKey }] : [];
    });
    keyed.sort((a, b) => a.enrollmentGroupId.localeCompare(b.enrollmentGroupId));
    return new GroupKeySearch(keyed);
  });
  const entry = { version, search };
  perScope.set(idScope, entry);
  search.catch(() => {
    if (perScope.get(idScope) === entry) perScope.delete(idScope);
  });
  return search;
}
