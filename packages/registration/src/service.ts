import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import {
  Errors,
  assertRegistrationId,
  silentLogger,
  toDpsError,
  type DeviceRegistrationState,
  type Logger,
  type ProvisioningInstance,
} from '@opendps/model';
import { registrations, type Store } from '@opendps/store';
import type { LatencySource, WebhookClient } from '@opendps/allocation';
import { assign } from './assign';
import { attest, type Attestation } from './attest';
import type { HubDirectory } from './hubs';
import { newOperationId, operationStatus, operations, type OperationFinished, type OperationInFlight } from './operations';
import { createRegistrationThrottle, type RegistrationThrottle, type ThrottledRequest } from './throttle';
import { because, markTraced, refusalReason, type RefusalReason } from './refusal';
import { discardTpmChallenge, issueTpmChallenge } from './tpm';
import { registrationTraces, type AssignmentDecision, type AttestationMechanism, type RegistrationMetrics, type RegistrationTrace } from './trace';
import type {
  AuthenticationRequest,
  OperationStatusRequest,
  RegistrationOutcome,
  RegistrationRequest,
  RegistrationService,
  RegistrationStatusRequest,
  Transport,
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
  /** Counts attempts, outcomes and phase latencies (the server's Prometheus metrics). */
  metrics?: RegistrationMetrics;
  /** How long the trace of an assignment, failure or disabled answer is kept (default 7 days). */
  traceTtlSeconds?: number;
  /**
   * How long the trace of a refusal is kept (default 1 h): refused callers choose their registration
   * ids, so these are bounded by the register quota times this lifetime.
   */
  refusalTraceTtlSeconds?: number;
}

const STORE_UNAVAILABLE = Errors.storeUnavailable().errorCode;

/** Refusals counted and logged but not stored: no instance to store under, no usable id, or a flood. */
const UNSTORED_REFUSALS: ReadonlySet<RefusalReason> = new Set<RefusalReason>(['unknownIdScope', 'invalidRequest', 'throttled', 'tpmChallengeIssued']);
/** Refusals that are not a failed attestation (the request never got as far, or got past it). */
const NOT_ATTESTATION: ReadonlySet<RefusalReason> = new Set<RefusalReason>([
  'unknownIdScope',
  'invalidRequest',
  'throttled',
  'tpmChallengeIssued',
  'operationNotFound',
  'registrationNotFound',
  'storeUnavailable',
  'internal',
]);

type RequestKind = RegistrationTrace['request'];
/** What the trace of an assignment needs to know about the request that started it. */
interface Started {
  kind: RequestKind;
  transport: Transport;
  /** performance.now() when the request arrived. */
  at: number;
}

/** What the AMQP SASL TPM exchange asks for (structurally `TpmChallenger` of @opendps/amqp): raw TPM2B_PUBLIC keys in, the raw blob out. */
export interface TpmChallengeIssuer {
  challenge(request: { idScope: string; registrationId: string; endorsementKey: Buffer; storageRootKey: Buffer }): Promise<Buffer>;
}

/** The registration pipeline (docs/architecture.md steps 3-7), shared by every front-end. */
export class DpsRegistrationService implements RegistrationService {
  private readonly logger: Logger;
  private readonly answerWithinMs: number;
  private readonly retryAfterSeconds: number;
  private readonly ttlSeconds: number;
  private readonly leaseMs: number;
  private readonly nodeId: string;
  private readonly throttle: RegistrationThrottle;
  private readonly now: () => number;
  private readonly metrics: RegistrationMetrics | undefined;
  /** Requests being answered and assignments still running (drain waits for both). */
  private readonly pending = new Set<Promise<unknown>>();
  /** The writes that go with a finished operation's record (its state, its trace), see `finished`. */
  private readonly alongside = new WeakMap<OperationFinished, Promise<unknown>>();

  constructor(private readonly options: RegistrationServiceOptions) {
    this.logger = (options.logger ?? silentLogger).child({ category: 'DeviceOperations' });
    this.answerWithinMs = options.answerWithinMs ?? 1500;
    this.retryAfterSeconds = options.retryAfterSeconds ?? 2;
    this.ttlSeconds = options.operationTtlSeconds ?? 1800;
    this.leaseMs = options.leaseMs ?? (options.leaseSeconds ?? 30) * 1000;
    this.nodeId = options.nodeId ?? randomUUID();
    this.now = options.now ?? Date.now;
    this.throttle = options.throttle ?? createRegistrationThrottle(options.store, this.now);
    this.metrics = options.metrics;
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
    return this.logged('register', request, async (started) => {
      const { instance, attestation } = await this.attested(request, 'register');
      if (!attestation) return this.disabled(instance, request, started);
      return this.finishTpm(instance, attestation, await this.start(instance, attestation, newOperationId(this.now()), request, started));
    });
  }

  /**
   * The attestation a register would run (same throttle, same rules, same codes), and nothing after
   * it: front-ends that authenticate when a connection opens (AMQP SASL PLAIN) call it.
   */
  async authenticate(request: AuthenticationRequest): Promise<void> {
    await this.logged('authenticate', request, async () => {
      await this.attested(request, 'authenticate');
    });
  }

  /**
   * The TPM challenge for the AMQP SASL exchange (docs/tpm.md §2.2): the same checks and record
   * as the HTTPS 401, the blob as raw bytes. A refusal is a coded 401 (SASL outcome `auth`).
   */
  readonly tpm: TpmChallengeIssuer = {
    challenge: async ({ idScope, registrationId, endorsementKey, storageRootKey }) => {
      const started: Started = { kind: 'register', transport: 'amqp', at: performance.now() };
      try {
        const instance = this.instance(idScope);
        assertRegistrationId(registrationId);
        const blob = await issueTpmChallenge(
          { store: this.options.store, idScope: instance.idScope, registrationId, now: new Date(this.now()), ...this.tpmTtls() },
          { endorsementKey: endorsementKey.toString('base64'), storageRootKey: storageRootKey.toString('base64') },
        );
        return Buffer.from(blob, 'base64');
      } catch (error) {
        // Refused in the SASL exchange (an unknown EK): traced like any refusal (the SASL layer does
        // not say whether it runs over TLS or WebSockets, so `amqp`).
        const proof = { kind: 'tpm' as const, endorsementKey: endorsementKey.toString('base64') };
        await this.refused({ idScope, registrationId, proof, transport: 'amqp' }, started, error, toDpsError(error).errorCode);
        throw error;
      }
    },
  };

  async operationStatus(request: OperationStatusRequest): Promise<RegistrationOutcome> {
    return this.logged('operationStatus', request, async (started) => {
      const { instance, attestation } = await this.attested(request);
      if (!attestation) return this.disabled(instance, request, started);
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
      const outcome = await this.start(
        instance,
        attestation,
        record.operationId,
        { ...request, payload: record.payload, clientAddress: record.clientAddress },
        started,
        true,
      );
      return this.finishTpm(instance, attestation, outcome);
    });
  }

  async registrationStatus(request: RegistrationStatusRequest): Promise<DeviceRegistrationState> {
    return this.logged('registrationStatus', request, async () => {
      const { instance } = await this.attested(request);
      const state = await registrations(this.options.store, instance.idScope).get(request.registrationId);
      if (!state) throw because('registrationNotFound', Errors.registrationNotFound());
      return state;
    });
  }

  /**
   * Instance, registration id and proof; `attestation` is undefined when the matching enrollment is
   * disabled. `authenticate` attests as a poll does: it consumes nothing.
   */
  private async attested(
    request: RegistrationStatusRequest,
    purpose: ThrottledRequest = 'poll',
  ): Promise<{ instance: ProvisioningInstance; attestation?: Attestation }> {
    const instance = this.instance(request.idScope);
    assertRegistrationId(request.registrationId);
    await this.throttle.admit(instance, purpose, request.registrationId);
    const started = performance.now();
    try {
      const attestation = await attest(
        {
          store: this.options.store,
          idScope: instance.idScope,
          registrationId: request.registrationId,
          now: new Date(this.now()),
          purpose: purpose === 'register' ? 'register' : 'poll',
          ...this.tpmTtls(),
          ...(this.options.sasSkewSeconds !== undefined ? { sasSkewSeconds: this.options.sasSkewSeconds } : {}),
        },
        request.proof,
      );
      this.metrics?.attestation(instance.name, request.transport, attestation.attested.attestationType, true);
      this.metrics?.phase(request.transport, 'attest', (performance.now() - started) / 1000);
      return attestation.enrollment.provisioningStatus === 'disabled' ? { instance } : { instance, attestation };
    } catch (error) {
      // A disabled enrollment is a verified device that gets the `disabled` answer.
      if (toDpsError(error).errorCode === Errors.enrollmentDisabled().errorCode) {
        this.metrics?.attestation(instance.name, request.transport, mechanismOf(request.proof), true);
        return { instance };
      }
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
    started: Started,
    persisted = false,
  ): Promise<RegistrationOutcome> {
    const record: OperationInFlight = {
      operationId,
      registrationId: attestation.attested.registrationId,
      status: 'assigning',
      ...(request.payload !== undefined ? { payload: request.payload } : {}),
      ...(request.clientAddress ? { clientAddress: request.clientAddress } : {}),
      lease: this.lease(),
    };
    // Tracked through the request that awaits it, then through the recording of its outcome.
    const work = this.work(instance, attestation, record, started);
    const finished = this.answerWithinMs > 0 ? await within(work, this.answerWithinMs) : undefined;
    const collection = operations(this.options.store, instance.idScope);
    if (finished) {
      // Answered at once: the final record is the only operation write, issued with the state and
      // the trace and awaited with them before the answer, so that the operationId handed out can be
      // polled on any node for the operation's lifetime.
      await Promise.all([collection.put(operationId, finished, { ttlSeconds: this.ttlSeconds }), this.alongside.get(finished)]);
      return { status: 200, body: operationStatus(finished) };
    }
    // The lease starts when the record is written, not when the work started: taken at the start,
    // a lease shorter than answer-within would be stored already expired and a poll would take over.
    const written = persisted
      ? Promise.resolve()
      : collection.put(operationId, { ...record, lease: this.lease() }, { ttlSeconds: this.ttlSeconds }).then(() => undefined);
    void this.track(
      Promise.all([work, written])
        // A device told `assigning` polls this record: it says the outcome only once the state
        // and the trace are written.
        .then(async ([final]) => {
          await this.alongside.get(final);
          await collection.put(operationId, final, { ttlSeconds: this.ttlSeconds });
        })
        .catch((error: unknown) => this.logger.error({ operationId, err: String(error) }, 'could not record the outcome of an operation')),
    );
    await written;
    this.renewLease(collection, operationId, work);
    return this.assigning(record);
  }

  /**
   * An operation's final record, with the writes issued alongside it in the same turn: its
   * registration state (`written`) and its trace (never failing), so that the SQLite store
   * commits the three together (docs/scale.md "Store round trips").
   */
  private finished(final: OperationFinished, written: Promise<unknown>, trace: RegistrationTrace): OperationFinished {
    const alongside = Promise.all([written, this.trace(trace)]);
    // Awaited by whoever writes the final record, which may be after a failure has settled it (a
    // 202's outcome waits for the in-flight record too): not an unhandled rejection meanwhile.
    alongside.catch(() => undefined);
    this.alongside.set(final, alongside);
    return final;
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
  private async work(instance: ProvisioningInstance, attestation: Attestation, record: OperationInFlight, started: Started): Promise<OperationFinished> {
    const begun = performance.now();
    let decision: AssignmentDecision | undefined;
    const traceOf = (outcome: RegistrationTrace['outcome'], state: DeviceRegistrationState, caught?: unknown): RegistrationTrace => ({
      ...this.traceBase(instance, record.registrationId, started),
      outcome,
      ...(caught !== undefined ? { reason: refusalReason(caught), errorCode: toDpsError(caught).errorCode } : {}),
      operationId: record.operationId,
      attestation: { mechanism: attestation.attested.attestationType, enrollment: attestation.attested.enrollment },
      ...(decision ? { assignment: decision } : {}),
      ...(state.assignedHub ? { assignedHub: state.assignedHub } : {}),
      ...(state.deviceId ? { deviceId: state.deviceId } : {}),
    });
    this.metrics?.inFlight(1);
    try {
      const { store, hubs, latency, webhook } = this.options;
      const { registrationState, written } = await assign({
        decided: (decided) => {
          decision = decided;
        },
        store,
        instance,
        hubs,
        attestation,
        ...(record.payload !== undefined ? { payload: record.payload } : {}),
        ...(record.clientAddress ? { clientAddress: record.clientAddress } : {}),
        ...(latency ? { latency } : {}),
        ...(webhook ? { webhook } : {}),
      });
      this.metrics?.phase(started.transport, 'assign', (performance.now() - begun) / 1000);
      const final: OperationFinished = { operationId: record.operationId, registrationId: record.registrationId, status: 'assigned', registrationState };
      return this.finished(final, written, traceOf('assigned', registrationState));
    } catch (caught) {
      const error = toDpsError(caught);
      // A store that cannot answer now is no verdict on the device: it is told to retry (503,
      // retry-after) and the operation stays `assigning`, never recorded `failed` for good.
      if (error.errorCode === STORE_UNAVAILABLE) throw caught;
      if (error.status >= 500) this.logger.error({ registrationId: record.registrationId, err: String(caught) }, 'registration failed');
      const { stored, written } = registrations(this.options.store, instance.idScope).putAlongside({
        registrationId: record.registrationId,
        status: 'failed',
        errorCode: error.errorCode,
        errorMessage: error.message,
      });
      const final: OperationFinished = { operationId: record.operationId, registrationId: record.registrationId, status: 'failed', registrationState: stored };
      // The failure is the answer whether or not its state could be kept.
      return this.finished(final, written.catch(() => undefined), traceOf('failed', stored, caught));
    } finally {
      this.metrics?.inFlight(-1);
    }
  }

  private async disabled(instance: ProvisioningInstance, request: RegistrationStatusRequest, started: Started): Promise<RegistrationOutcome> {
    const { registrationId } = request;
    const { stored, written } = registrations(this.options.store, instance.idScope).putAlongside({ registrationId, status: 'disabled' });
    const operationId = newOperationId(this.now());
    // The state and the trace in one turn (one commit); both written before the answer.
    await Promise.all([
      written,
      this.trace({
        ...this.traceBase(instance, registrationId, started),
        outcome: 'disabled',
        reason: 'enrollmentDisabled',
        operationId,
        attestation: { mechanism: mechanismOf(request.proof) },
      }),
    ]);
    return { status: 200, body: { operationId, status: 'disabled', registrationState: stored } };
  }

  private traceBase(instance: ProvisioningInstance, registrationId: string, started: Started) {
    return {
      time: new Date(this.now()).toISOString(),
      instance: instance.name,
      idScope: instance.idScope,
      registrationId,
      transport: started.transport,
      request: started.kind,
      durationMs: Math.round(performance.now() - started.at),
    };
  }

  /**
   * The one log line per outcome, its metrics, and the copy the admin API reads back (stored
   * under the instance, never failing the registration). Awaited, so a device that has its answer
   * finds its trace.
   */
  private async trace(trace: RegistrationTrace): Promise<void> {
    // Observing an outcome must never change it (an assignment made is never reported failed).
    try {
      await this.record(trace);
    } catch (error) {
      this.logger.error({ registrationId: trace.registrationId, err: String(error) }, 'could not trace a registration outcome');
    }
  }

  private async record(trace: RegistrationTrace): Promise<void> {
    const { time: _time, ...fields } = trace;
    if (trace.outcome === 'refused' && trace.reason === 'tpmChallengeIssued') {
      this.logger.debug(fields, 'TPM challenge issued');
      return;
    }
    // An assignment is the hot path: its line is written at debug, so that the default (info) writes
    // nothing per healthy registration (docs/observability.md "Logs"); its trace is stored all the same.
    // Failures, disabled answers and refusals are what an operator looks for: info.
    if (trace.outcome === 'assigned') this.logger.debug(fields, 'registration assigned');
    else this.logger.info(fields, `registration ${trace.outcome}`);
    this.metrics?.outcome(trace);
    this.metrics?.phase(trace.transport, 'total', trace.durationMs / 1000);
    if (trace.outcome === 'refused' && (trace.request !== 'register' || (trace.reason && UNSTORED_REFUSALS.has(trace.reason)))) return;
    await this.storeTrace(trace).catch((error: unknown) =>
      this.logger.debug({ registrationId: trace.registrationId, err: String(error) }, 'could not store a registration trace'),
    );
  }

  /**
   * Keeps the last outcome per registration id. A refused register (anyone may send one for any id)
   * keeps the outcome it replaces as `previous`, for as long as that one would have been kept.
   */
  private async storeTrace(trace: RegistrationTrace): Promise<void> {
    const traces = registrationTraces(this.options.store, trace.idScope);
    const id = trace.registrationId.toLowerCase();
    const keep = this.options.traceTtlSeconds ?? 7 * 86400;
    if (trace.outcome !== 'refused') {
      await traces.put(id, trace, { ttlSeconds: keep });
      return;
    }
    const existing = (await traces.get(id))?.value;
    const replaced = existing && existing.outcome !== 'refused' ? existing : existing?.previous;
    if (!replaced) {
      await traces.put(id, trace, { ttlSeconds: this.options.refusalTraceTtlSeconds ?? 3600 });
      return;
    }
    const { previous: _older, ...previous } = replaced;
    await traces.put(id, { ...trace, previous }, { ttlSeconds: keep });
  }

  private assigning(record: OperationInFlight): RegistrationOutcome {
    return {
      status: 202,
      retryAfterSeconds: this.retryAfterSeconds,
      body: { operationId: record.operationId, status: 'assigning', registrationState: { registrationId: record.registrationId, status: 'assigning' } },
    };
  }

  private lease(): OperationInFlight['lease'] {
    return { owner: this.nodeId, expiresAt: this.now() + this.leaseMs };
  }

  /**
   * Runs one device request, tracked for a drain. Answers are debug lines (the outcome's trace is
   * the info line); a refusal is traced here with its reason, and the device gets the coded error unchanged.
   */
  private logged<T>(kind: RequestKind, request: RegistrationStatusRequest, run: (started: Started) => Promise<T>): Promise<T> {
    return this.track(this.answer(kind, request, run));
  }

  private async answer<T>(kind: RequestKind, request: RegistrationStatusRequest, run: (started: Started) => Promise<T>): Promise<T> {
    const started: Started = { kind, transport: request.transport, at: performance.now() };
    try {
      const result = await run(started);
      const status = (result as Partial<RegistrationOutcome> | undefined)?.body?.status;
      // forceRegistration is decoded and logged only: every register re-runs allocation under the
      // enrollment's reprovision policy already (docs/device-wire.md).
      const force = (request as Partial<RegistrationRequest>).forceRegistration;
      this.logger.debug(
        {
          request: kind,
          idScope: request.idScope,
          registrationId: request.registrationId,
          transport: request.transport,
          status,
          ...(force === undefined ? {} : { forceRegistration: force }),
          durationMs: Math.round(performance.now() - started.at),
        },
        'answered',
      );
      return result;
    } catch (error) {
      const coded = toDpsError(error);
      if (coded.status >= 500) this.logger.error({ request: kind, registrationId: request.registrationId, err: String(error) }, 'unexpected failure');
      await this.refused(request, started, error, coded.errorCode);
      throw markTraced(coded);
    }
  }

  private async refused(request: RegistrationStatusRequest, started: Started, error: unknown, errorCode: number): Promise<void> {
    const reason = refusalReason(error);
    const scope = typeof request.idScope === 'string' ? request.idScope.toLowerCase() : '';
    const instance = this.options.instances().find((candidate) => candidate.idScope.toLowerCase() === scope);
    const mechanism = mechanismOf(request.proof);
    if (instance && !NOT_ATTESTATION.has(reason)) this.metrics?.attestation(instance.name, request.transport, mechanism, false);
    await this.trace({
      time: new Date(this.now()).toISOString(),
      instance: instance?.name ?? '',
      idScope: instance?.idScope ?? String(request.idScope).slice(0, 64),
      registrationId: String(request.registrationId).slice(0, 128),
      transport: request.transport,
      request: started.kind,
      outcome: 'refused',
      reason,
      errorCode,
      ...('operationId' in request && typeof request.operationId === 'string' ? { operationId: request.operationId.slice(0, 128) } : {}),
      attestation: { mechanism },
      durationMs: Math.round(performance.now() - started.at),
    });
  }
}

function mechanismOf(proof: RegistrationStatusRequest['proof']): AttestationMechanism {
  switch (proof.kind) {
    case 'sas':
      return 'symmetricKey';
    case 'x509':
      return 'x509';
    case 'tpm':
      return 'tpm';
    default:
      return 'none';
  }
}

/**
 * What `work` resolves with when that is within `ms`, else undefined. The timer is cleared as soon
 * as the work is done: a registration answered at once leaves no timer behind (at 300 registrations
 * a second, 1.5 s timers left to run out were 450 live timers).
 */
function within<T>(work: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise<T | undefined>((resolve, reject) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    timer.unref();
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
