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
import type { LatencySource, WebhookClient } from '@opendps/allocation';
import { assign } from './assign';
import { attest, type Attestation } from './attest';
import type { HubDirectory } from './hubs';
import { newOperationId, operationStatus, operations, type OperationRecord } from './operations';
import { createRegistrationThrottle, type RegistrationThrottle } from './throttle';
import { discardTpmChallenge, issueTpmChallenge } from './tpm';
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
  /** The lease in milliseconds; wins over `leaseSeconds` (tests use short leases with a fake clock). */
  leaseMs?: number;
  /** Names this node in leases (default a random id). */
  nodeId?: string;
  /** How long a TPM challenge may be answered (default 300 s). */
  tpmChallengeSeconds?: number;
  /** Seconds a SAS token may be past its expiry, for device clocks that run slow (default 300). */
  sasSkewSeconds?: number;
  /**
   * The clock leases, TPM challenges, SAS expiry and quota windows are compared with (default
   * Date.now). Timers (answer-within, lease renewal) stay on the real clock.
   */
  now?: () => number;
  /** Where lowest-latency allocation learns a device's latency to each hub. */
  latency?: LatencySource;
  /** Calls custom allocation webhooks. */
  webhook?: WebhookClient;
  /** Per-instance quotas (default: counted in the store with the instance's `quotas`, see throttle.ts). */
  throttle?: RegistrationThrottle;
}

/** What the AMQP SASL TPM exchange asks for (structurally `TpmChallenger` of @opendps/amqp): raw TPM2B_PUBLIC keys in, the raw blob out. */
export interface TpmChallengeIssuer {
  challenge(request: { idScope: string; registrationId: string; endorsementKey: Buffer; storageRootKey: Buffer }): Promise<Buffer>;
}

/** The registration pipeline (ARCHITECTURE.md steps 3-7), shared by every front-end. */
export class DpsRegistrationService implements RegistrationService {
  private readonly logger: Logger;
  private readonly answerWithinMs: number;
  private readonly retryAfterSeconds: number;
  private readonly ttlSeconds: number;
  private readonly leaseMs: number;
  private readonly nodeId: string;
  private readonly throttle: RegistrationThrottle;
  private readonly now: () => number;
  /** Requests being answered and assignments still running (drain waits for both). */
  private readonly pending = new Set<Promise<unknown>>();

  constructor(private readonly options: RegistrationServiceOptions) {
    this.logger = (options.logger ?? silentLogger).child({ category: 'DeviceOperations' });
    this.answerWithinMs = options.answerWithinMs ?? 1500;
    this.retryAfterSeconds = options.retryAfterSeconds ?? 2;
    this.ttlSeconds = options.operationTtlSeconds ?? 1800;
    this.leaseMs = options.leaseMs ?? (options.leaseSeconds ?? 30) * 1000;
    this.nodeId = options.nodeId ?? randomUUID();
    this.now = options.now ?? Date.now;
    this.throttle = options.throttle ?? createRegistrationThrottle(options.store, this.now);
  }

  /** Requests being answered plus assignments answered 202 and still running on this node. */
  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Resolves when nothing is in flight (a drain: every answer sent, every outcome recorded), or
   * with false after `timeoutMs`; what is left stays leased in the store for another node's poll.
   */
  async settle(timeoutMs: number): Promise<boolean> {
    const timer = new AbortController();
    const expired = delay(timeoutMs, true, { signal: timer.signal }).catch(() => false);
    try {
      // Work can start while earlier work settles (a poll taking an operation over): wait again.
      while (this.pending.size > 0) {
        if (await Promise.race([Promise.allSettled([...this.pending]).then(() => false), expired])) return false;
      }
      return true;
    } finally {
      timer.abort();
    }
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.pending.add(promise);
    const forget = (): void => void this.pending.delete(promise);
    promise.then(forget, forget);
    return promise;
  }

  async register(request: RegistrationRequest): Promise<RegistrationOutcome> {
    return this.logged('register', request, async () => {
      const { instance, attestation } = await this.authenticate(request, 'register');
      if (!attestation) return this.disabled(instance, request.registrationId);
      return this.finishTpm(instance, attestation, await this.start(instance, attestation, newOperationId(), request));
    });
  }

  /**
   * The TPM challenge for the AMQP SASL exchange (tpm-attestation.md §2.2): the same checks and record
   * as the HTTPS 401, the blob as raw bytes. A refusal is a coded 401 (SASL outcome `auth`).
   */
  readonly tpm: TpmChallengeIssuer = {
    challenge: async ({ idScope, registrationId, endorsementKey, storageRootKey }) => {
      const instance = this.instance(idScope);
      assertRegistrationId(registrationId);
      const blob = await issueTpmChallenge(
        { store: this.options.store, idScope: instance.idScope, registrationId, now: new Date(this.now()), ...this.tpmTtls() },
        { endorsementKey: endorsementKey.toString('base64'), storageRootKey: storageRootKey.toString('base64') },
      );
      return Buffer.from(blob, 'base64');
    },
  };

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
      if (record.status !== 'assigning') return this.finishTpm(instance, attestation, { status: 200, body: operationStatus(record) });
      if (record.lease.expiresAt > this.now()) return this.assigning(record);
      // The node that held this operation died mid-registration: take it over (one poller wins the CAS).
      try {
        await collection.put(record.operationId, { ...record, lease: this.lease() }, { ifMatch: document.etag, ttlSeconds: this.ttlSeconds });
      } catch {
        return this.assigning(record);
      }
      this.logger.warn({ operationId: record.operationId, registrationId: record.registrationId }, 'taking over an abandoned operation');
      const outcome = await this.start(instance, attestation, record.operationId, { ...request, payload: record.payload, clientAddress: record.clientAddress }, true);
      return this.finishTpm(instance, attestation, outcome);
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
  private async authenticate(
    request: RegistrationStatusRequest,
    purpose: 'register' | 'poll' = 'poll',
  ): Promise<{ instance: ProvisioningInstance; attestation?: Attestation }> {
    const instance = this.instance(request.idScope);
    assertRegistrationId(request.registrationId);
    await this.throttle.admit(instance, purpose, request.registrationId);
    try {
      const attestation = await attest(
        {
          store: this.options.store,
          idScope: instance.idScope,
          registrationId: request.registrationId,
          now: new Date(this.now()),
          purpose,
          ...this.tpmTtls(),
          ...(this.options.sasSkewSeconds !== undefined ? { sasSkewSeconds: this.options.sasSkewSeconds } : {}),
        },
        request.proof,
      );
      return attestation.enrollment.provisioningStatus === 'disabled' ? { instance } : { instance, attestation };
    } catch (error) {
      if (toDpsError(error).errorCode === Errors.enrollmentDisabled().errorCode) return { instance };
      throw error;
    }
  }

  private instance(idScope: unknown): ProvisioningInstance {
    const scope = typeof idScope === 'string' ? idScope.toLowerCase() : '';
    const instance = this.options.instances().find((candidate) => candidate.idScope.toLowerCase() === scope);
    if (!instance) throw Errors.idScopeNotFound();
    return instance;
  }

  private tpmTtls(): { tpmChallengeTtlSeconds: number; tpmAnsweredTtlSeconds: number } {
    return { tpmChallengeTtlSeconds: this.options.tpmChallengeSeconds ?? 300, tpmAnsweredTtlSeconds: this.ttlSeconds };
  }

  /** Once a TPM device has its final answer, its K1 is discarded (tpm.ts: the challenge lifecycle). */
  private async finishTpm(instance: ProvisioningInstance, attestation: Attestation, outcome: RegistrationOutcome): Promise<RegistrationOutcome> {
    if (outcome.status === 200 && attestation.attested.attestationType === 'tpm') {
      await discardTpmChallenge(this.options.store, instance.idScope, attestation.attested.registrationId).catch((error: unknown) =>
        this.logger.warn({ registrationId: attestation.attested.registrationId, err: String(error) }, 'could not discard a TPM challenge'),
      );
    }
    return outcome;
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
    // Tracked through the request that awaits it, then through the recording of its outcome.
    const work = this.work(instance, attestation, record);
    const finished =
      this.answerWithinMs > 0 ? await Promise.race([work, delay(this.answerWithinMs, undefined, { ref: false })]) : undefined;
    const collection = operations(this.options.store, instance.idScope);
    if (finished) {
      if (persisted) await collection.put(operationId, finished, { ttlSeconds: this.ttlSeconds });
      return { status: 200, body: operationStatus(finished) };
    }
    // The lease starts when the record is written, not when the work started: taken at the start,
    // a lease shorter than answer-within would be stored already expired and a poll would take over.
    const written = persisted
      ? Promise.resolve()
      : collection.put(operationId, { ...record, lease: this.lease() }, { ttlSeconds: this.ttlSeconds }).then(() => undefined);
    void this.track(
      Promise.all([work, written])
        .then(([final]) => collection.put(operationId, final, { ttlSeconds: this.ttlSeconds }))
        .catch((error: unknown) => this.logger.error({ operationId, err: String(error) }, 'could not record the outcome of an operation')),
    );
    await written;
    this.renewLease(collection, operationId, work);
    return this.assigning(record);
  }

  /**
   * Keeps this node's lease alive while its work runs: the work may outlast one lease (a custom
   * webhook may take 3 attempts of 10 s), and a poll must not take over a live operation and allocate
   * the device a second time. Conditional on the etag, so a renewal never overwrites the outcome.
   */
  private renewLease(collection: ReturnType<typeof operations>, operationId: string, work: Promise<unknown>): void {
    const timer = setInterval(() => {
      void collection
        .get(operationId)
        .then((document) => {
          const current = document?.value;
          if (!document || current?.status !== 'assigning' || current.lease.owner !== this.nodeId) return;
          return collection.put(operationId, { ...current, lease: this.lease() }, { ifMatch: document.etag, ttlSeconds: this.ttlSeconds });
        })
        .catch(() => undefined);
    }, Math.max(100, Math.floor(this.leaseMs / 3)));
    timer.unref();
    void work.finally(() => clearInterval(timer));
  }

  /** Never rejects: a failure becomes the operation's `failed` state, recorded for the operator too. */
  private async work(instance: ProvisioningInstance, attestation: Attestation, record: OperationRecord): Promise<OperationRecord> {
    try {
      const { store, hubs, latency, webhook } = this.options;
      const registrationState = await assign({
        store,
        instance,
        hubs,
        attestation,
        ...(record.payload !== undefined ? { payload: record.payload } : {}),
        ...(record.clientAddress ? { clientAddress: record.clientAddress } : {}),
        ...(latency ? { latency } : {}),
        ...(webhook ? { webhook } : {}),
      });
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
    return { owner: this.nodeId, expiresAt: this.now() + this.leaseMs };
  }

  private logged<T>(operation: string, request: RegistrationStatusRequest, run: () => Promise<T>): Promise<T> {
    return this.track(this.answer(operation, request, run));
  }

  private async answer<T>(operation: string, request: RegistrationStatusRequest, run: () => Promise<T>): Promise<T> {
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
