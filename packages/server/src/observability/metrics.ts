import type { Server } from 'node:net';
import type { WebhookClient } from '@opendps/allocation';
import type { AttestationMechanism, RegistrationMetrics, RegistrationTrace, Transport } from '@opendps/registration';
import type { Collection, Store } from '@opendps/store';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { BoundCounter, BoundHistogram, type CounterSeries, type HistogramSeries } from './bound-metrics';

/** Which listener a connection came in on: the device transports, plus `https` (every TCP connection to the HTTPS port). */
export type ConnectionProtocol = Transport;

/**
 * Children of one metric by their label values, resolved once and reused on the hot path: a tree
 * of maps, one level per label, so a lookup allocates no key.
 */
class Children<C> {
  private readonly root = new Map<string, unknown>();

  constructor(private readonly make: (...values: string[]) => C) {}

  get(...values: string[]): C {
    let level = this.root;
    const last = values.length - 1;
    for (let i = 0; i < last; i++) {
      const value = values[i] as string;
      let next = level.get(value) as Map<string, unknown> | undefined;
      if (!next) {
        next = new Map();
        level.set(value, next);
      }
      level = next;
    }
    const leaf = values[last] as string;
    let child = level.get(leaf) as C | undefined;
    if (child === undefined) {
      child = this.make(...values);
      level.set(leaf, child);
    }
    return child;
  }
}

/** Latency buckets in seconds: 1 ms to 30 s (a webhook may take three 10 s attempts). */
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * The Prometheus metrics of one server (docs/observability.md "Metrics"), modelled on Azure DPS's
 * own: AttestationAttempts {protocol, mechanism, status}, RegistrationAttempts {hub, status},
 * DeviceAssignments {hub}, each per instance. Its own registry, so several servers in one process
 * (tests) do not share counts.
 */
export class ServerMetrics implements RegistrationMetrics {
  readonly registry = new Registry();
  private readonly attestations: Children<CounterSeries>;
  private readonly registrations: Children<CounterSeries>;
  private readonly registrationProtocols: Children<CounterSeries>;
  private readonly assignments: Children<CounterSeries>;
  private readonly refusals: Children<CounterSeries>;
  private readonly throttled: Children<CounterSeries>;
  private readonly latency: Children<HistogramSeries>;
  private readonly storeLatency: Children<HistogramSeries>;
  private readonly webhookLatency: Children<HistogramSeries>;
  /** Per protocol: its gauge child, and one 'close' listener shared by all of its sockets. */
  private readonly connections: Children<{ inc(): void; closed: () => void }>;
  private readonly operations: Gauge;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'opendps_' });
    const attestation = new BoundCounter('opendps_attestation_attempts_total', 'Device attestations attempted (Azure DPS AttestationAttempts).', this.registry);
    this.attestations = new Children((instance, protocol, mechanism, status) => attestation.series({ instance, protocol, mechanism, status }));
    const registration = new BoundCounter('opendps_registration_attempts_total', 'Device registrations by outcome: assigned, failed, disabled, refused (Azure DPS RegistrationAttempts).', this.registry);
    this.registrations = new Children((instance, hub, status) => registration.series({ instance, hub, status }));
    const registrationProtocol = new BoundCounter('opendps_registration_attempts_by_protocol_total', 'The registration attempts of opendps_registration_attempts_total, by device protocol instead of hub.', this.registry);
    this.registrationProtocols = new Children((instance, protocol, status) => registrationProtocol.series({ instance, protocol, status }));
    const assignment = new BoundCounter('opendps_device_assignments_total', 'Devices assigned to an IoT hub (Azure DPS DeviceAssignments).', this.registry);
    this.assignments = new Children((instance, hub) => assignment.series({ instance, hub }));
    const refusal = new BoundCounter('opendps_registration_refusals_total', 'Refused or failed device requests by the check that failed (docs/observability.md "Refusal reasons").', this.registry);
    this.refusals = new Children((instance, reason) => refusal.series({ instance, reason }));
    const throttle = new BoundCounter('opendps_throttled_total', 'Device requests answered 429 (over the instance quota), by request.', this.registry);
    this.throttled = new Children((instance, request) => throttle.series({ instance, request }));
    // Observed about ten times a registration: label sets bound once (bound-metrics.ts).
    const duration = new BoundHistogram(
      'opendps_registration_duration_seconds',
      'Registration latency by device protocol and phase: attest, assign (allocation and hub), total (request to outcome).',
      BUCKETS,
      this.registry,
    );
    this.latency = new Children((protocol, phase) => duration.series({ protocol, phase }));
    const store = new BoundHistogram('opendps_store_duration_seconds', 'State store call latency as the registration pipeline sees it, by operation.', BUCKETS, this.registry);
    this.storeLatency = new Children((operation) => store.series({ operation }));
    const webhook = new BoundHistogram(
      'opendps_webhook_duration_seconds',
      'Custom allocation webhook calls, retries included, by result (ok, error).',
      BUCKETS,
      this.registry,
    );
    this.webhookLatency = new Children((result) => webhook.series({ result }));
    const connections = new Gauge({
      name: 'opendps_connections',
      help: 'Open device connections by protocol (https counts every TCP connection to the HTTPS port).',
      labelNames: ['protocol'],
      registers,
    });
    this.connections = new Children((protocol) => {
      const gauge = connections.labels(protocol);
      return { inc: () => gauge.inc(), closed: () => gauge.dec() };
    });
    this.operations = new Gauge({ name: 'opendps_operations_in_flight', help: 'Registrations being assigned on this node.', registers });
  }

  attestation(instance: string, transport: Transport, mechanism: AttestationMechanism, ok: boolean): void {
    this.attestations.get(instance, transport, mechanism, ok ? 'success' : 'failure').inc();
  }

  outcome(trace: RegistrationTrace): void {
    if (trace.reason) this.refusals.get(trace.instance, trace.reason).inc();
    if (trace.reason === 'throttled') this.throttled.get(trace.instance, trace.request === 'register' ? 'register' : 'poll').inc();
    // A refused poll or status lookup is not a registration attempt; an assignment finished by a poll (takeover) is.
    if (trace.outcome === 'refused' && trace.request !== 'register') return;
    const hub = trace.assignment?.chosen.name ?? '';
    this.registrations.get(trace.instance, hub, trace.outcome).inc();
    this.registrationProtocols.get(trace.instance, trace.transport, trace.outcome).inc();
    if (trace.outcome === 'assigned') this.assignments.get(trace.instance, hub).inc();
  }

  phase(transport: Transport, phase: 'attest' | 'assign' | 'total', seconds: number): void {
    this.latency.get(transport, phase).observe(seconds);
  }

  inFlight(delta: 1 | -1): void {
    this.operations.inc(delta);
  }

  /**
   * Counts a connection until its socket closes. The listener is the protocol's, shared by every
   * socket ('close' comes once): an idle connection holds no closure for it (docs/scale.md).
   */
  connection(protocol: ConnectionProtocol, socket: { on(event: 'close', listener: () => void): unknown }): void {
    const gauge = this.connections.get(protocol);
    gauge.inc();
    socket.on('close', gauge.closed);
  }

  /** Counts every TCP connection a server accepts. */
  trackServer(protocol: ConnectionProtocol, server: Pick<Server, 'on'>): void {
    server.on('connection', (socket) => this.connection(protocol, socket));
  }

  /** The store as the registration pipeline uses it, each call timed. */
  timedStore(store: Store): Store {
    const timed = <A extends unknown[], R>(operation: string, call: (...args: A) => Promise<R>) => {
      const histogram = this.storeLatency.get(operation);
      return async (...args: A): Promise<R> => {
        const started = performance.now();
        try {
          return await call(...args);
        } finally {
          histogram.observe((performance.now() - started) / 1000);
        }
      };
    };
    const increment = timed('increment', (key: string, windowSeconds: number) => store.increment(key, windowSeconds));
    // One wrapper per (scope, collection), made once: a registration asks for its collections about
    // ten times. Scopes are ID scopes and hub names, so this stays small; the cap is only a backstop.
    const wrappers = new Map<string, Collection<unknown>>();
    const wrap = <T>(scope: string, name: string): Collection<T> => {
      const key = `${scope}\u0000${name}`;
      let wrapper = wrappers.get(key);
      if (!wrapper) {
        if (wrappers.size >= 1024) wrappers.clear();
        wrapper = timedCollection(store.collection<unknown>(scope, name));
        wrappers.set(key, wrapper);
      }
      return wrapper as Collection<T>;
    };
    const timedCollection = <T>(collection: Collection<T>): Collection<T> => ({
      get: timed('get', (id) => collection.get(id)),
      put: timed('put', (id, value, options) => collection.put(id, value, options)),
      delete: timed('delete', (id, options) => collection.delete(id, options)),
      list: timed('list', (options) => collection.list(options)),
      findByIndex: timed('findByIndex', (index, key) => collection.findByIndex(index, key)),
      count: timed('count', () => collection.count()),
      version: timed('version', () => collection.version()),
    });
    return {
      kind: store.kind,
      collection<T>(scope: string, name: string): Collection<T> {
        return wrap<T>(scope, name);
      },
      increment,
      close: () => store.close(),
    };
  }

  /** The webhook client, each call (all its attempts) timed. */
  timedWebhook(client: WebhookClient): WebhookClient {
    const ok = this.webhookLatency.get('ok');
    const failed = this.webhookLatency.get('error');
    return {
      call: async (url, request) => {
        const started = performance.now();
        try {
          const answer = await client.call(url, request);
          ok.observe((performance.now() - started) / 1000);
          return answer;
        } catch (error) {
          failed.observe((performance.now() - started) / 1000);
          throw error;
        }
      },
    };
  }
}
