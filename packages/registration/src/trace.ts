import type { AllocationPolicy, ReprovisionPolicy } from '@opendps/model';
import type { AllocationWhy, ReprovisionAction } from '@opendps/allocation';
import type { Collection, Store } from '@opendps/store';
import type { RefusalReason } from './refusal';
import type { Transport } from './types';

/** How a device proved itself, as Azure's AttestationAttempts metric names it. */
export type AttestationMechanism = 'symmetricKey' | 'x509' | 'tpm' | 'none';

/** What allocation and reprovisioning decided, for the trace (docs/observability.md "Registration traces"). */
export interface AssignmentDecision {
  policy: AllocationPolicy;
  candidates: Array<{ name: string; hostName: string; allocationWeight: number }>;
  chosen: { name: string; hostName: string };
  why: AllocationWhy;
  reprovision: {
    action: ReprovisionAction;
    substatus: string;
    /** The hub the device leaves (migrate, reset). */
    from?: string;
    policy?: Partial<ReprovisionPolicy>;
  };
}

/**
 * One registration outcome: the one info log line and the record the admin API and
 * `opendps registration show` read back. Holds no keys, tokens or certificates.
 */
export interface RegistrationTrace {
  /** ISO-8601 UTC. */
  time: string;
  instance: string;
  idScope: string;
  registrationId: string;
  transport: Transport;
  /** What the device asked: register, a poll of its operation, its registration status, or (at connection open) authentication. */
  request: 'register' | 'operationStatus' | 'registrationStatus' | 'authenticate';
  outcome: 'assigned' | 'failed' | 'disabled' | 'refused';
  /** Why it was refused or failed (never sent to the device). */
  reason?: RefusalReason;
  errorCode?: number;
  operationId?: string;
  attestation: { mechanism: AttestationMechanism; enrollment?: { kind: 'individual'; registrationId: string } | { kind: 'group'; enrollmentGroupId: string } };
  assignment?: AssignmentDecision;
  assignedHub?: string;
  deviceId?: string;
  durationMs: number;
  /** Stored refusals only: the assignment (or failure) this refusal replaced as the last outcome. */
  previous?: RegistrationTrace;
}

/** Where outcomes are counted (the server's Prometheus metrics); every method must be cheap and never throw. */
export interface RegistrationMetrics {
  /** One device request verified, or refused before or during attestation. */
  attestation(instance: string, transport: Transport, mechanism: AttestationMechanism, ok: boolean): void;
  /** One outcome, as traced. */
  outcome(trace: RegistrationTrace): void;
  /** Seconds a phase took: `attest`, `assign` (allocation and hub), `total` (request to answer). */
  phase(transport: Transport, phase: 'attest' | 'assign' | 'total', seconds: number): void;
  /** Registrations being assigned on this node (+1 at start, -1 when done). */
  inFlight(delta: 1 | -1): void;
}

export const REGISTRATION_TRACES = 'registrationTraces';

/** The last outcome per registration id (keyed lower case, as DPS ids compare), kept a bounded time. */
export function registrationTraces(store: Store, idScope: string): Collection<RegistrationTrace> {
  return store.collection<RegistrationTrace>(idScope, REGISTRATION_TRACES);
}
