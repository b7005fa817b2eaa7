/**
 * The JSON of `GET /admin/instances/{name}/metrics` (docs/observability.md "Metrics for the console").
 * Types only and no imports: the web console (packages/console) imports this file as well, so the
 * server and the page it feeds read one definition.
 */
export interface SeriesValue {
  labels: Record<string, string>;
  value: number;
}

export interface HistogramValue {
  labels: Record<string, string>;
  /** Upper bounds in seconds (the `+Inf` bucket is implied by `count`). */
  le: number[];
  /** Cumulative observations at or under each bound, as Prometheus counts buckets. */
  counts: number[];
  count: number;
  sum: number;
}

/** One reading of this node's metrics for one instance (docs/observability.md "Metrics for the console"). */
export interface MetricsSnapshot {
  instance: string;
  /** This node's clock (ms since the epoch): rates are differences between two snapshots over the difference of `time`. */
  time: number;
  /** When this node started counting: a counter that went down between snapshots restarted with it. */
  since: number;
  counters: Record<string, SeriesValue[]>;
  gauges: Record<string, SeriesValue[]>;
  histograms: Record<string, HistogramValue[]>;
}
