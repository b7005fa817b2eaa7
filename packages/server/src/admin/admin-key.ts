import { randomBytes } from 'node:crypto';
import { isDpsError, type SharedAccessPolicy } from '@opendps/model';
import type { Store } from '@opendps/store';

/** The deployment-level policy: creates and removes instances, and may manage any instance's hubs. */
export const ADMIN_POLICY = 'opendpsadmin';

/**
 * The admin key lives in the store (scope `global`), so every node sharing a Redis accepts the same
 * key; it is made once, create-if-absent, on the first start. `connection.json` carries it as
 * `adminConnectionString` (that file is private to the user, 0600, like the owner keys it holds).
 */
export async function ensureAdminPolicy(store: Store): Promise<SharedAccessPolicy> {
  const collection = store.collection<SharedAccessPolicy>('global', 'admin');
  const existing = await collection.get(ADMIN_POLICY);
  if (existing) return existing.value;
  const policy: SharedAccessPolicy = {
    keyName: ADMIN_POLICY,
    primaryKey: randomBytes(32).toString('base64'),
    secondaryKey: randomBytes(32).toString('base64'),
    rights: ['ServiceConfig'],
  };
  try {
    await collection.put(ADMIN_POLICY, policy, { ifNoneMatch: '*' });
    return policy;
  } catch (error) {
    // Another node made it first: use theirs.
    const winner = isDpsError(error) && error.status === 409 ? await collection.get(ADMIN_POLICY) : undefined;
    if (!winner) throw error;
    return winner.value;
  }
}

export function adminConnectionString(host: string, policy: SharedAccessPolicy): string {
  return `HostName=${host};SharedAccessKeyName=${policy.keyName};SharedAccessKey=${policy.primaryKey}`;
}
