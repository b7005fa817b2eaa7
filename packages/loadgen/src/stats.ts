/**
 * The figures a benchmark prints: nearest-rank percentiles and a completion rate. Pure functions, so
 * the arithmetic is tested on its own, away from sockets and timers.
 */
export interface LatencySummary {
  count: number;
  /** Milliseconds, nearest-rank. NaN when there are no samples. */
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/**
 * The nearest-rank percentile: the smallest sample with at least `p` percent of the samples at or
 * below it. `sorted` must be ascending. No interpolation, so the answer is always a measured value.
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (!(p > 0 && p <= 100)) throw new RangeError(`A percentile is in (0, 100], got ${p}.`);
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

export function summarizeLatencies(latenciesMs: readonly number[]): LatencySummary {
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  const total = sorted.reduce((sum, value) => sum + value, 0);
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted.length ? (sorted[sorted.length - 1] as number) : Number.NaN,
    mean: sorted.length ? total / sorted.length : Number.NaN,
  };
}

/** Completions per second over a wall-clock span. Zero when nothing completed; never Infinity. */
export function ratePerSecond(completed: number, elapsedMs: number): number {
  if (completed <= 0) return 0;
  if (!(elapsedMs > 0)) throw new RangeError(`An elapsed time must be positive, got ${elapsedMs}.`);
  return (completed * 1000) / elapsedMs;
}

/** `value / reference`, NaN when the reference is not a positive number. */
export function ratio(value: number, reference: number): number {
  return reference > 0 ? value / reference : Number.NaN;
}
