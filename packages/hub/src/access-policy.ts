import { generateSymmetricKey, isDpsError } from '@opendps/model';
import type { Store } from '@opendps/store';

/** A hub shared access policy (the built-in hub has one: `iothubowner`, all rights). */
export interface AccessPolicy {
  keyName: string;
  primaryKey: string;
  secondaryKey: string;
}

const POLICY_NAME = 'iothubowner';

/**
 * The hub's `iothubowner` keys, generated once and kept in `(hubName, 'settings')` so the hub's
 * connection string survives restarts and is the same on every node sharing the store.
 */
export async function loadAccessPolicy(store: Store, hubName: string): Promise<AccessPolicy> {
  const settings = store.collection<AccessPolicy>(hubName, 'settings');
  const existing = await settings.get(POLICY_NAME);
  if (existing) return existing.value;
  const created: AccessPolicy = { keyName: POLICY_NAME, primaryKey: generateSymmetricKey(), secondaryKey: generateSymmetricKey() };
  try {
    await settings.put(POLICY_NAME, created, { ifNoneMatch: '*' });
    return created;
  } catch (error) {
    // Another node created it first: use theirs.
    if (!isDpsError(error) || error.status !== 409) throw error;
    const winner = await settings.get(POLICY_NAME);
    if (!winner) throw error;
    return winner.value;
  }
}
