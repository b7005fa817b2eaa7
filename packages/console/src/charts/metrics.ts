/**
 * The server's metrics as the live view reads them (`GET /admin/instances/{name}/metrics`,
 * docs/observability.md "Metrics for the console"), and what the page computes from two readings:
 * counters only grow, so a rate is a difference over time, and a percentile comes from the
 * difference of the cumulative latency buckets (as Prometheus' histogram_quantile does).
 */
// The snapshot's types are the server's own (a file of types only, with no Node imports).
import type { HistogramValue, MetricsSnapshot, SeriesValue } from '../../../server/src/observability/metrics-snapshot-types';
export type { HistogramValue, MetricsSnapshot, SeriesValue };

export const REGISTRATIONS = 'opendps_registration_attempts_total';
export const REGISTRATIONS_BY_PROTOCOL = 'opendps_registration_attempts_by_protocol_total';
export const ASSIGNMENTS = 'opendps_device_assignments_total';
export const LATENCY = 'opendps_registration_duration_seconds';

/** A counter summed by one label: `{assigned: 12, refused: 3}`. */
export function totalsBy(snapshot: MetricsSnapshot, metric: string, label: string): Map<string, number> {
  const totals = new Map<string, number>();
  for (const series of snapshot.counters[metric] ?? []) {
    const key = series.labels[label] ?? '';
    totals.set(key, (totals.get(key) ?? 0) + series.value);
  }
  return totals;
}

/**
 * Per-second rates by label between two readings. A counter lower than before means the node
 * restarted (or another node answered): its current value is what was counted since.
 */
export function ratesBy(previous: MetricsSnapshot, current: MetricsSnapshot, metric: string, label: string): Map<string, number> {
  const seconds = (current.time - previous.time) / 1000;
  const before = totalsBy(previous, metric, label);
  const rates = new Map<string, number>();
  if (seconds <= 0) return rates;
  for (const [key, now] of totalsBy(current, metric, label)) {
    const then = before.get(key) ?? 0;
    rates.set(key, (now >= then ? now - then : now) / seconds);
  }
  return rates;
}

export interface Buckets {
  le: number[];
  /** Cumulative counts per bound. */
  counts: number[];
  count: number;
}

/** The registration latency (phase `total`) of every protocol together, as one set of buckets. */
export function latencyBuckets(snapshot: MetricsSnapshot, phase = 'total'): Buckets | undefined {
  let merged: Buckets | undefined;
  for (const histogram of snapshot.histograms[LATENCY] ?? []) {
    if (histogram.labels.phase !== phase) continue;
    if (!merged) merged = { le: [...histogram.le], counts: histogram.counts.map(() => 0), count: 0 };
    histogram.counts.forEach((n, i) => (merged!.counts[i] = (merged!.counts[i] ?? 0) + n));
    merged.count += histogram.count;
  }
  return merged;
}

/** Observations that fell between two readings (undefined when none, or the node restarted). */
export function bucketDelta(previous: Buckets | undefined, current: Buckets | undefined): Buckets | undefined {
  if (!current) return undefined;
  if (!previous || previous.count > current.count) return current.count > 0 ? current : undefined;
  const count = current.count - previous.count;
  if (count <= 0) return undefined;
  return { le: current.le, counts: current.counts.map((n, i) => n - (previous.counts[i] ?? 0)), count };
}

/**
 * The q-quantile (0..1) in seconds, interpolated linearly inside its bucket; above the last finite
 * bound it is that bound (the `+Inf` bucket has no upper edge to interpolate to).
 */
export function quantile(q: number, buckets: Buckets | undefined): number | undefined {
  if (!buckets || buckets.count <= 0) return undefined;
  const rank = q * buckets.count;
  let lowerBound = 0;
  let lowerCount = 0;
  for (let i = 0; i < buckets.le.length; i++) {
    const bound = buckets.le[i]!;
    const count = buckets.counts[i]!;
    if (count >= rank && count > lowerCount) return lowerBound + ((bound - lowerBound) * (rank - lowerCount)) / (count - lowerCount);
    lowerBound = bound;
    lowerCount = count;
  }
  return buckets.le[buckets.le.length - 1];
}
