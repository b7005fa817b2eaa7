import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import {
  Errors,
  assertRegistrationId,
  silentLogger,
  toDpsError,
  utcNow,
  type DeviceRegistrationState,
  type Logger,
  type ProvisioningInstance,
} from '@opendps/model';
import { registrations, type Store } from '@opendps/store';
import { assign } from './assign';
import { attest, type Attestation } from './attest';
import type { HubDirectory } from './hubs';
import { newOperationId, operationStatus, operations, type OperationRecord } from './operations';
import type {
  OperationStatusRequest,
  RegistrationOutcome,
  RegistrationRequest,
  RegistrationService,
  RegistrationStatusRequest,
} from './types';

export interface RegistrationServiceOptions {
  store: Store;
  instances: () => readonly ProvisioningInstance[];
  hubs: HubDirectory;
  logger?: Logger;
  /**
   * Answer `register` with the final state when the work is done within this time (default 1500 ms);
   * 0 always answers 202 and lets the device poll, as real DPS does.
   */
  answerWithinMs?: number;
  /** `retry-after` while assigning, in seconds (default 2: real DPS allows 5 polls per 10 s). */
  retryAfterSeconds?: number;
  /** How long an operation can be polled (default 1800 s). */
  operationTtlSeconds?: number;
  /** A node's lease on an operation's work; a poll after it expires takes the work over (default 30 s). */
  leaseSeconds?: number;
  /** Names this node in leases (default a random id). */
  nodeId?: string;
}

/** The registration pipeline (ARCHITECTURE.md steps 3-7), shared by every front-end. */
export class DpsRegistrationService implements RegistrationService {
  private readonly logger: Logger;
  private readonly answerWithinMs: number;
  private readonly retryAfterSeconds: number;
  private readonly ttlSeconds: number;
  private readonly leaseMs: number;
  private readonly nodeId: string;

  constructor(private readonly options: RegistrationServiceOptions) {
    this.logger = (options.logger ?? silentLogger).child({ category: 'DeviceOperations' });
    this.answerWithinMs = options.answerWithinMs ?? 1500;
    this.retryAfterSeconds = options.retryAfterSeconds ?? 2;
    this.ttlSeconds = options.operationTtlSeconds ?? 1800;
    this.leaseMs = (options.leaseSeconds ?? 30) * 1000;
    this.nodeId = options.nodeId ?? randomUUID();
  }

  async register(request: RegistrationRequest): Promise<RegistrationOutcome> {
    return this.logged('register', request, async () => {
      const { instance, attestation } = await this.authenticate(request);
      if (!attestation) return this.disabled(instance, request.registrationId);
      return this.start(instance, attestation, newOperationId(), request);
    });
  }

  async operationStatus(request: OperationStatusRequest): Promise<RegistrationOutcome> {
    return this.logged('operationStatus', request, async () => {
      const { instance, attestation } = await this.authenticate(request);
      if (!attestation) return this.disabled(instance, request.registrationId);
      const collection = operations(this.options.store, instance.idScope);
      const document = await collection.get(request.operationId);
      const record = document?.value;
      if (!document || !record || record.registrationId.toLowerCase() !== request.registrationId.toLowerCase()) {
        throw Errors.operationNotFound();
      }
      if (record.status !== 'assigning') return { status: 200, body: operationStatus(record) };
      if (record.lease.expiresAt > Date.now()) return this.assigning(record);
      // The node that held this operation died mid-registration: take it over (one poller wins the CAS).
      try {
        await collection.put(record.operationId, { ...record, lease: this.lease() }, { ifMatch: document.etag, ttlSeconds: this.ttlSeconds });
      } catch {
        return this.assigning(record);
      }
      this.logger.warn({ operationId: record.operationId, registrationId: record.registrationId }, 'taking over an abandoned operation');
      return this.start(instance, attestation, record.operationId, { ...request, payload: record.payload, clientAddress: record.clientAddress }, true);
    });
  }

  async registrationStatus(request: RegistrationStatusRequest): Promise<DeviceRegistrationState> {
    return this.logged('registrationStatus', request, async () => {
      const { instance } = await this.authenticate(request);
      const state = await registrations(this.options.store, instance.idScope).get(request.registrationId);
      if (!state) throw Errors.registrationNotFound();
      return state;
    });
  }

  /** Instance, registration id and proof; `attestation` is undefined when the matching enrollment is disabled. */
  private async authenticate(request: RegistrationStatusRequest): Promise<{ instance: ProvisioningInstance; attestation?: Attestation }> {
    const scope = typeof request.idScope === 'string' ? request.idScope.toLowerCase() : '';
    const instance = this.options.instances().find((candidate) => candidate.idScope.toLowerCase() === scope);
    if (!instance) throw Errors.idScopeNotFound();
    assertRegistrationId(request.registrationId);
    try {
      const attestation = await attest(
        { store: this.options.store, idScope: instance.idScope, registrationId: request.registrationId, now: new Date() },
        request.proof,
      );
      return attestation.enrollment.provisioningStatus === 'disabled' ? { instance } : { instance, attestation };
    } catch (error) {
      if (toDpsError(error).errorCode === Errors.enrollmentDisabled().errorCode) return { instance };
      throw error;
    }
  }

  /**
   * Runs the assignment; answers with the final state when it is done quickly, else persists the
   * operation as `assigning` (leased to this node) and answers 202. The work's outcome is written
   * after the in-flight record, never before it.
   */
  private async start(
    instance: ProvisioningInstance,
    attestation: Attestation,
    operationId: string,
    request: Pick<RegistrationRequest, 'registrationId' | 'payload' | 'clientAddress'>,
    persisted = false,
  ): Promise<RegistrationOutcome> {
    const record: OperationRecord = {
      operationId,
      registrationId: attestation.attested.registrationId,
      status: 'assigning',
      attested: attestation.attested,
      lease: this.lease(),
      ...(request.payload !== undefined ? { payload: request.payload } : {}),
      ...(request.clientAddress ? { clientAddress: request.clientAddress } : {}),
    };
    const work = this.work(instance, attestation, record);
    const finished =
      this.answerWithinMs > 0 ? await Promise.race([work, delay(this.answerWithinMs, undefined, { ref: false })]) : undefined;
    const collection = operations(this.options.store, instance.idScope);
    if (finished) {
      if (persisted) await collection.put(operationId, finished, { ttlSeconds: this.ttlSeconds });
      return { status: 200, body: operationStatus(finished) };
    }
    const written = persisted ? Promise.resolve() : collection.put(operationId, record, { ttlSeconds: this.ttlSeconds }).then(() => undefined);
    void Promise.all([work, written])
      .then(([final]) => collection.put(operationId, final, { ttlSeconds: this.ttlSeconds }))
      .catch((error: unknown) => this.logger.error({ operationId, err: String(error) }, 'could not record the outcome of an operation'));
    await written;
    return this.assigning(record);
  }

  /** Never rejects: a failure becomes the operation's `failed` state, recorded for the operator too. */
  private async work(instance: ProvisioningInstance, attestation: Attestation, record: OperationRecord): Promise<OperationRecord> {
    try {
      const registrationState = await assign({ store: this.options.store, instance, hubs: this.options.hubs, attestation });
      return { ...record, status: 'assigned', registrationState };
    } catch (caught) {
      const error = toDpsError(caught);
      if (error.status >= 500) this.logger.error({ registrationId: record.registrationId, err: String(caught) }, 'registration failed');
      const now = utcNow();
      const failed: DeviceRegistrationState = {
        registrationId: record.registrationId,
        status: 'failed',
        errorCode: error.errorCode,
        errorMessage: error.message,
        createdDateTimeUtc: now,
        lastUpdatedDateTimeUtc: now,
      };
      const stored = await registrations(this.options.store, instance.idScope)
        .put(failed)
        .catch(() => failed);
      return { ...record, status: 'failed', registrationState: stored };
    }
  }

  private async disabled(instance: ProvisioningInstance, registrationId: string): Promise<RegistrationOutcome> {
    const now = utcNow();
    const state = await registrations(this.options.store, instance.idScope).put({
      registrationId,
      status: 'disabled',
      createdDateTimeUtc: now,
      lastUpdatedDateTimeUtc: now,
    });
    return { status: 200, body: { operationId: newOperationId(), status: 'disabled', registrationState: state } };
  }

  private assigning(record: OperationRecord): RegistrationOutcome {
    return {
      status: 202,
      retryAfterSeconds: this.retryAfterSeconds,
      body: { operationId: record.operationId, status: 'assigning', registrationState: { registrationId: record.registrationId, status: 'assigning' } },
    };
  }

  private lease(): OperationRecord['lease'] {
    return { owner: this.nodeId, expiresAt: Date.now() + this.leaseMs };
  }

  private async logged<T>(operation: string, request: RegistrationStatusRequest, run: () => Promise<T>): Promise<T> {
    const started = performance.now();
    const fields = { operation, idScope: request.idScope, registrationId: request.registrationId, transport: request.transport };
    try {
      const result = await run();
      const status = (result as Partial<RegistrationOutcome>).body?.status;
      this.logger.info({ ...fields, ...(status ? { status } : {}), durationMs: Math.round(performance.now() - started) }, operation);
      return result;
    } catch (error) {
      const coded = toDpsError(error);
      if (coded.status >= 500) this.logger.error({ ...fields, err: String(error) }, 'unexpected failure');
      this.logger.info({ ...fields, errorCode: coded.errorCode, durationMs: Math.round(performance.now() - started) }, operation);
      throw coded;
    }
  }
}
