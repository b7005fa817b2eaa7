import { performance } from 'node:perf_hooks';
import { register, type Registered } from './clients/register';
import { errorCodeOf, PHASES, type ClientTarget, type PhaseTimes, type Transport } from './clients/types';
import { credentialSource, type AttestationSpec } from './credentials';
import { sendTelemetry } from './telemetry';

/**
 * The load itself: devices started in a closed loop (`concurrency` in flight) or an open loop
 * (`rate` arrivals per second, ramped linearly from zero over `rampMs`), until `count` devices have
 * started or `durationMs` has passed, whichever comes first; then the ones in flight finish (each has
 * its own deadline). Plain-data options, so a worker process runs its share from the same object.
 */
export interface LoadOptions {
  transport: Transport;
  target: ClientTarget;
  attestation: AttestationSpec;
  /** Closed loop: devices in flight. Ignored when `rate` is set. */
  concurrency: number;
  /** Open loop: arrivals per second at full rate. */
  rate?: number;
  rampMs?: number;
  count?: number;
  durationMs?: number;
  /** Device indices are `first + step * n` (a worker process takes every step-th device). */
  first?: number;
  step?: number;
  timeoutMs?: number;
  pollingIntervalMs?: number;
  maxRetries?: number;
  payload?: unknown;
  /** After provisioning: hub telemetry. */
  telemetry?: { intervalMs: number; durationMs: number };
  /** At most this many registrations in flight in an open loop; later arrivals wait. Default 10,000. */
  maxInFlight?: number;
}

export interface Sample {
  index: number;
  registrationId: string;
  ok: boolean;
  code?: string;
  message?: string;
  phases?: PhaseTimes;
  assignedHub?: string;
  polls?: number;
  retries?: number;
}

export interface Progress {
  elapsedMs: number;
  started: number;
  done: number;
  succeeded: number;
  inFlight: number;
  errors: Record<string, number>;
  telemetrySent: number;
  telemetryActive: number;
}

export interface TelemetryFigures {
  devices: number;
  sent: number;
  failed: number;
  connectMs: number[];
  publishMs: number[];
}

export interface LoadResult {
  samples: Sample[];
  elapsedMs: number;
  telemetry?: TelemetryFigures;
  errors: Record<string, number>;
}

export interface RunHooks {
  onProgress?: (progress: Progress) => void;
  progressIntervalMs?: number;
}

export async function runLoad(options: LoadOptions, hooks: RunHooks = {}): Promise<LoadResult> {
  const source = credentialSource(options.attestation);
  const first = options.first ?? 0;
  const step = options.step ?? 1;
  let count = options.count ?? Number.POSITIVE_INFINITY;
  if (source.size !== undefined) count = Math.min(count, Math.ceil((source.size - first) / step));
  const durationMs = options.durationMs ?? Number.POSITIVE_INFINITY;
  if (!Number.isFinite(count) && !Number.isFinite(durationMs)) throw new RangeError('a load needs a count or a duration to stop at');

  const samples: Sample[] = [];
  const errors: Record<string, number> = {};
  const telemetry: TelemetryFigures = { devices: 0, sent: 0, failed: 0, connectMs: [], publishMs: [] };
  const telemetryRuns: Array<Promise<void>> = [];
  let started = 0;
  let inFlight = 0;
  let telemetryActive = 0;
  const begin = performance.now();
  const elapsed = () => performance.now() - begin;
  const more = () => started < count && elapsed() < durationMs;
  const countError = (code: string) => (errors[code] = (errors[code] ?? 0) + 1);

  const progress = (): Progress => ({
    elapsedMs: elapsed(),
    started,
    done: samples.length,
    succeeded: samples.filter((sample) => sample.ok).length,
    inFlight,
    errors: { ...errors },
    telemetrySent: telemetry.sent,
    telemetryActive,
  });
  const ticker = hooks.onProgress ? setInterval(() => hooks.onProgress?.(progress()), hooks.progressIntervalMs ?? 1000) : undefined;

  const device = async (n: number): Promise<void> => {
    const index = first + step * n;
    inFlight += 1;
    let registrationId = `#${index}`;
    try {
      const credentials = source.credentials(index);
      registrationId = credentials.registrationId;
      const result: Registered = await register({
        transport: options.transport,
        target: options.target,
        credentials,
        ...(options.payload !== undefined ? { payload: options.payload } : {}),
        ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
        ...(options.pollingIntervalMs !== undefined ? { pollingIntervalMs: options.pollingIntervalMs } : {}),
        ...(options.maxRetries !== undefined ? { maxRetries: options.maxRetries } : {}),
      });
      samples.push({ index, registrationId, ok: true, phases: result.phases, assignedHub: result.assignedHub, polls: result.polls, retries: result.retries });
      if (options.telemetry) telemetryRuns.push(fleetDevice(result, credentials));
    } catch (error) {
      const code = errorCodeOf(error);
      countError(code);
      samples.push({ index, registrationId, ok: false, code, message: (error as Error).message });
    } finally {
      inFlight -= 1;
    }
  };

  const fleetDevice = async (result: Registered, credentials: Parameters<typeof sendTelemetry>[0]['credentials']): Promise<void> => {
    const spec = options.telemetry;
    if (!spec) return;
    telemetryActive += 1;
    telemetry.devices += 1;
    try {
      const outcome = await sendTelemetry({
        assignedHub: result.assignedHub,
        deviceId: result.deviceId,
        credentials,
        ca: options.target.ca,
        intervalMs: spec.intervalMs,
        durationMs: spec.durationMs,
        onSent: (ms) => {
          telemetry.sent += 1;
          telemetry.publishMs.push(ms);
        },
        ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
      });
      telemetry.connectMs.push(outcome.connectMs);
    } catch (error) {
      telemetry.failed += 1;
      countError(`telemetry:${errorCodeOf(error)}`);
    } finally {
      telemetryActive -= 1;
    }
  };

  try {
    if (options.rate !== undefined) await openLoop(options.rate, options.rampMs ?? 0, options.maxInFlight ?? 10_000);
    else await closedLoop(Math.max(1, options.concurrency));
    await Promise.all(telemetryRuns);
  } finally {
    if (ticker) clearInterval(ticker);
  }
  hooks.onProgress?.(progress());
  return { samples, elapsedMs: elapsed(), errors, ...(options.telemetry ? { telemetry } : {}) };

  async function closedLoop(concurrency: number): Promise<void> {
    const worker = async () => {
      while (more()) await device(started++);
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  }

  async function openLoop(rate: number, rampMs: number, maxInFlight: number): Promise<void> {
    const running = new Set<Promise<void>>();
    while (more()) {
      const due = arrivalTime(started, rate, rampMs);
      const wait = due - elapsed();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(wait, Math.max(1, durationMs - elapsed()))));
      if (!more() || elapsed() < due) continue;
      while (inFlight >= maxInFlight && running.size) await Promise.race(running);
      const run = device(started++).finally(() => running.delete(run));
      running.add(run);
    }
    await Promise.all(running);
  }
}

/**
 * When arrival `n` (0-based) is due, in ms from the start: the rate climbs linearly from 0 to `rate`
 * over `rampMs` (arrivals so far = rate·t²/2ramp), then stays at `rate`.
 */
export function arrivalTime(n: number, rate: number, rampMs: number): number {
  const perMs = rate / 1000;
  const rampArrivals = (perMs * rampMs) / 2;
  if (rampMs > 0 && n < rampArrivals) return Math.sqrt((2 * n * rampMs) / perMs);
  return rampMs + (n - (rampMs > 0 ? rampArrivals : 0)) / perMs;
}

export { PHASES };
