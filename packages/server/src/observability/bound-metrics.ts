import type { Registry } from 'prom-client';

/** One label set of a histogram: where observations go. */
export interface HistogramSeries {
  observe(value: number): void;
}

/** One label set of a counter. */
export interface CounterSeries {
  inc(value?: number): void;
}

/** A value as prom-client's metrics answer `get()`: the registry formats these. */
interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
  /** prom-client's buckets carry `exemplar: null` when exemplars are off. */
  exemplar?: null;
}

class Series implements HistogramSeries {
  /** Observations per bucket (not cumulative); the last one counts what no bound holds (+Inf). */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    private readonly owner: BoundHistogram,
    readonly labels: Readonly<Record<string, string>>,
  ) {
    this.counts = new Float64Array(owner.bounds.length + 1);
  }

  observe(value: number): void {
    // prom-client throws on these; a metric must never fail what it measures.
    if (!Number.isFinite(value)) return;
    const bounds = this.owner.bounds;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += value;
    if (this.count++ === 0) this.owner.observed.push(this);
  }

  clear(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}

/**
 * A Prometheus histogram whose label sets are bound once (`series`): an observation is a bucket
 * search and three additions, where prom-client's Histogram hashes and validates its labels on
 * every call (it showed in the registration profile, docs/scale.md "Profile"). It answers `get()`
 * as prom-client's Histogram does and is registered in the same registry, so the exposition is
 * the same text: a label set appears from its first observation on, in that order.
 */
export class BoundHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly bounds: readonly number[];
  /** @internal The series observed at least once since the last reset, in the order of their first observation. */
  readonly observed: Series[] = [];
  private readonly all: Series[] = [];

  constructor(
    readonly name: string,
    readonly help: string,
    buckets: readonly number[],
    registry: Registry,
  ) {
    this.bounds = [...buckets].sort((a, b) => a - b);
    // prom-client's Registry takes any object with a name, `get()` and `reset()`.
    registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  /** The series of one label set (label name -> value, in the metric's label order); bind it once and keep it. */
  series(labels: Record<string, string>): HistogramSeries {
    const series = new Series(this, { ...labels });
    this.all.push(series);
    return series;
  }

  async get(): Promise<{ name: string; help: string; type: 'histogram'; values: MetricValue[]; aggregator: 'sum' }> {
    const values: MetricValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const series of this.observed) {
      let cumulative = 0;
      this.bounds.forEach((le, i) => {
        cumulative += series.counts[i] as number;
        values.push({ labels: { le, ...series.labels }, value: cumulative, metricName: bucket, exemplar: null });
      });
      values.push(
        { labels: { le: '+Inf', ...series.labels }, value: series.count, metricName: bucket, exemplar: null },
        { labels: { ...series.labels }, value: series.sum, metricName: `${this.name}_sum` },
        { labels: { ...series.labels }, value: series.count, metricName: `${this.name}_count` },
      );
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  reset(): void {
    for (const series of this.all) series.clear();
    this.observed.length = 0;
  }
}

class Count implements CounterSeries {
  value = 0;
  /** In `counted` (prom-client shows a label set from its first `inc`, even of 0). */
  listed = false;

  constructor(
    private readonly owner: BoundCounter,
    readonly labels: Readonly<Record<string, string>>,
  ) {}

  inc(value = 1): void {
    // prom-client throws on a decrease; a metric must never fail what it measures.
    if (!(value >= 0) || !Number.isFinite(value)) return;
    if (!this.listed) {
      this.listed = true;
      this.owner.counted.push(this);
    }
    this.value += value;
  }
}

/**
 * A Prometheus counter whose label sets are bound once (`series`), for the counters of every
 * registration: prom-client's hashes and validates a labels() child's labels on every `inc`.
 * Registered in prom-client's registry and answering `get()` as its Counter does (the same
 * exposition); a label set appears from its first `inc` on, in that order.
 */
export class BoundCounter {
  readonly type = 'counter';
  readonly aggregator = 'sum';
  /** @internal The series counted since the last reset, in the order of their first `inc`. */
  readonly counted: Count[] = [];
  private readonly all: Count[] = [];

  constructor(
    readonly name: string,
    readonly help: string,
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  /** The series of one label set (label name -> value, in the metric's label order); bind it once and keep it. */
  series(labels: Record<string, string>): CounterSeries {
    const series = new Count(this, { ...labels });
    this.all.push(series);
    return series;
  }

  async get(): Promise<{ name: string; help: string; type: 'counter'; values: MetricValue[]; aggregator: 'sum' }> {
    const values = this.counted.map((series) => ({ value: series.value, labels: { ...series.labels } }));
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  reset(): void {
    for (const series of this.all) {
      series.value = 0;
      series.listed = false;
    }
    this.counted.length = 0;
  }
}
