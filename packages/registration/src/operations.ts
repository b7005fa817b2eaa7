import { randomUUID } from 'node:crypto';
import type { DeviceRegistrationState, RegistrationOperationStatus, RegistrationStatus } from '@opendps/model';
import type { Collection, Store } from '@opendps/store';
import type { AttestedDevice } from './attest';

/**
 * An in-flight registration, kept in the store so a device may poll on any gateway node. The node
 * doing the work holds a lease; a poll that finds the lease expired (that node died) takes the
 * operation over and finishes it, so no device is left `assigning` forever.
 */
export interface OperationRecord {
  operationId: string;
  registrationId: string;
  status: RegistrationStatus;
  registrationState?: DeviceRegistrationState;
  attested: AttestedDevice;
  payload?: unknown;
  clientAddress?: string;
  lease: { owner: string; expiresAt: number };
}

export const OPERATIONS = 'operations';

/**
 * Real DPS operation ids look like `4.<hex>.<guid>`; devices treat them as opaque. The 16 hex digits
 * come from a second random UUID (Node draws those from a buffered pool; `randomBytes(8)` asked
 * OpenSSL each time, a cost that showed in the registration profile).
 */
export function newOperationId(): string {
  return `4.${randomUUID().replace(/-/g, '').slice(0, 16)}.${randomUUID()}`;
}

export function operations(store: Store, idScope: string): Collection<OperationRecord> {
  return store.collection<OperationRecord>(idScope, OPERATIONS);
}

export function operationStatus(record: OperationRecord): RegistrationOperationStatus {
  return {
    operationId: record.operationId,
    status: record.status,
    registrationState: record.registrationState ?? { registrationId: record.registrationId, status: record.status },
  };
}
