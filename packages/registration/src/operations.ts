import { randomUUID } from 'node:crypto';
import type { DeviceRegistrationState, RegistrationOperationStatus } from '@opendps/model';
import type { Collection, Store } from '@opendps/store';

/**
 * A registration still being assigned, kept in the store so a device may poll on any gateway node.
 * The node doing the work holds a lease; a poll that finds the lease expired (that node died) takes
 * the operation over and finishes it with its own attestation of the device, so the record keeps
 * only what the work needs besides: the device's payload and address (allocation inputs).
 */
export interface OperationInFlight {
  operationId: string;
  registrationId: string;
  status: 'assigning';
  payload?: unknown;
  clientAddress?: string;
  lease: { owner: string; expiresAt: number };
}

/** A finished registration: exactly what a poll answers with (`operationStatus`). */
export interface OperationFinished {
  operationId: string;
  registrationId: string;
  status: 'assigned' | 'failed';
  registrationState: DeviceRegistrationState;
}

export type OperationRecord = OperationInFlight | OperationFinished;

export const OPERATIONS = 'operations';

/** Operation ids issued by this process in the same millisecond are told apart (and kept in order) by this. */
let sequence = 0;

/**
 * Real DPS operation ids look like `4.<16 hex>.<guid>`; devices treat them as opaque
 * (docs/device-wire.md). The 16 hex digits are the clock (12, milliseconds) and a counter (4), so
 * new records land at the end of the store's index instead of on a random page of it; the guid
 * keeps ids unguessable and unique across nodes.
 */
export function newOperationId(now: number = Date.now()): string {
  sequence = (sequence + 1) & 0xffff;
  return `4.${now.toString(16).padStart(12, '0')}${sequence.toString(16).padStart(4, '0')}.${randomUUID()}`;
}

export function operations(store: Store, idScope: string): Collection<OperationRecord> {
  return store.collection<OperationRecord>(idScope, OPERATIONS);
}

export function operationStatus(record: OperationRecord): RegistrationOperationStatus {
  return {
    operationId: record.operationId,
    status: record.status,
    registrationState: record.status === 'assigning' ? { registrationId: record.registrationId, status: record.status } : record.registrationState,
  };
}
