import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { deriveDeviceKey } from '@opendps/attestation';
import { registerDevice, type DeviceResult } from './device';
import { ratePerSecond, summarizeLatencies, type LatencySummary } from './stats';

/**
 * N registrations with at most C in flight: C workers each take the next index until none is left
 * (or the time budget is spent), so the fleet is bounded and stops by itself.
 */
export interface FleetOptions<T extends { latencyMs: number }> {
  count: number;
  concurrency: number;
  /** Registers device `index` (0-based); rejects when that device fails. */
  register: (index: number) => Promise<T>;
  /** No registration starts after this long (default 10 minutes); the rest count as not started. */
  maxDurationMs?: number;
}

export interface FleetFailure {
  index: number;
  message: string;
}

export interface FleetResult<T> {
  count: number;
  concurrency: number;
  succeeded: number;
  failed: number;
  notStarted: number;
  /** From the first start to the last completion. */
  elapsedMs: number;
  /** Successful registrations per second of elapsed time. */
  perSecond: number;
  latency: LatencySummary;
  /** The successful results, in completion order. */
  results: T[];
  failures: FleetFailure[];
}

export const MAX_COUNT = 1_000_000;
export const MAX_CONCURRENCY = 5_000;

export async function runFleet<T extends { latencyMs: number }>(options: FleetOptions<T>): Promise<FleetResult<T>> {
  const { count } = options;
  if (!Number.isInteger(count) || count < 1 || count > MAX_COUNT) {
    throw new RangeError(`count must be an integer from 1 to ${MAX_COUNT}, got ${count}.`);
  }
  if (!Number.isInteger(options.concurrency) || options.concurrency < 1 || options.concurrency > MAX_CONCURRENCY) {
    throw new RangeError(`concurrency must be an integer from 1 to ${MAX_CONCURRENCY}, got ${options.concurrency}.`);
  }
  const concurrency = Math.min(options.concurrency, count);
  const maxDurationMs = options.maxDurationMs ?? 600_000;
  const results: T[] = [];
  const failures: FleetFailure[] = [];
  let next = 0;
  const started = performance.now();

  const worker = async () => {
    while (next < count && performance.now() - started < maxDurationMs) {
      const index = next++;
      try {
        results.push(await options.register(index));
      } catch (error) {
        failures.push({ index, message: error instanceof Error ? error.message : String(error) });
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));

  const elapsedMs = Math.max(performance.now() - started, Number.EPSILON);
  return {
    count,
    concurrency,
    succeeded: results.length,
    failed: failures.length,
    notStarted: count - next,
    elapsedMs,
    perSecond: ratePerSecond(results.length, elapsedMs),
    latency: summarizeLatencies(results.map((result) => result.latencyMs)),
    results,
    failures,
  };
}

/** Where a simulated fleet registers. */
export interface DpsTarget {
  host: string;
  port: number;
  ca: string | Buffer;
  idScope: string;
}

export interface DeviceFleetOptions {
  target: DpsTarget;
  /** Each device's symmetric key: see `groupDerivedKeys` for devices of an enrollment group. */
  deviceKey: (registrationId: string) => string;
  count: number;
  concurrency: number;
  /** Registration ids are `${prefix}${index}`. */
  prefix: string;
  /** Per-device deadline (default 30 s). */
  timeoutMs?: number;
  maxDurationMs?: number;
}

/** A fleet of symmetric-key devices over MQTT/TLS, against loopback only. */
export function runDeviceFleet(options: DeviceFleetOptions): Promise<FleetResult<DeviceResult>> {
  const { target } = options;
  assertLoopback(target.host);
  return runFleet({
    count: options.count,
    concurrency: options.concurrency,
    ...(options.maxDurationMs !== undefined ? { maxDurationMs: options.maxDurationMs } : {}),
    register: (index) => {
      const registrationId = `${options.prefix}${index}`;
      return registerDevice({
        ...target,
        registrationId,
        key: options.deviceKey(registrationId),
        ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
      });
    },
  });
}

/** Keys for the devices of a symmetric-key enrollment group (docs/service-rest.md §14). */
export function groupDerivedKeys(groupKey: string): (registrationId: string) => string {
  return (registrationId) => deriveDeviceKey(groupKey, registrationId);
}

/** A load generator aimed elsewhere than this machine is a denial-of-service tool; refuse. */
export function assertLoopback(host: string): void {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  const loopback =
    bare === 'localhost' ||
    (isIP(bare) === 4 && bare.startsWith('127.')) ||
    bare === '::1' ||
    bare.startsWith('::ffff:127.');
  if (!loopback) throw new RangeError(`The load generator targets loopback only, not '${host}'.`);
}
