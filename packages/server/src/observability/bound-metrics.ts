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
  /** prom-client's histogram buckets carry `exemplar: null` when exemplars are off. */
  exemplar?: null;
}

/** One bound label set: it appears in the exposition from its first use on, as prom-client's do. */
abstract class Bound {
  private listed = false;

  constructor(
    private readonly used: Bound[],
    readonly labels: Readonly<Record<string, string>>,
  ) {}

  protected use(): void {
    if (this.listed) return;
    this.listed = true;
    this.used.push(this);
  }

  clear(): void {
    this.listed = false;
  }
}

/**
 * What a bound counter and a bound histogram share: registered in prom-client's registry (which
 * takes any object with a name, `get()` and `reset()`), their label sets bound once by `series`.
 * prom-client's own metrics hash and validate a labels() child's labels on every call, which showed
 * in the registration profile (docs/scale.md "Profile"); these answer `get()` as prom-client's
 * Counter and Histogram do, so the exposition is the same text.
 */
abstract class BoundMetric<S extends Bound> {
  readonly aggregator = 'sum';
  /** The label sets used since the last reset, in the order of their first use. */
  protected readonly used: S[] = [];
  private readonly all: S[] = [];

  constructor(
    readonly name: string,
    readonly help: string,
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  protected bind(series: S): S {
    this.all.push(series);
    return series;
  }

  reset(): void {
    for (const series of this.all) series.clear();
    this.used.length = 0;
  }
}

class Count extends Bound implements CounterSeries {
  value = 0;

  inc(value = 1): void {
    // prom-client throws on a decrease; a metric must never fail what it measures.
    if (!(value >= 0) || !Number.isFinite(value)) return;
    this.use();
    this.value += value;
  }

  override clear(): void {
    super.clear();
    this.value = 0;
  }
}

/** A Prometheus counter whose label sets are bound once (`series`). */
export class BoundCounter extends BoundMetric<Count> {
  readonly type = 'counter';

  /** The series of one label set (label name -> value, in the metric's label order); bind it once and keep it. */
  series(labels: Record<string, string>): CounterSeries {
    return this.bind(new Count(this.used, { ...labels }));
  }

  async get(): Promise<{ name: string; help: string; type: 'counter'; values: MetricValue[]; aggregator: 'sum' }> {
    const values = this.used.map((series) => ({ value: series.value, labels: { ...series.labels } }));
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}

class Observations extends Bound implements HistogramSeries {
  /** Observations per bucket (not cumulative); the last one counts what no bound holds (+Inf). */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    used: Bound[],
    labels: Readonly<Record<string, string>>,
    private readonly bounds: readonly number[],
  ) {
    super(used, labels);
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    // prom-client throws on these; a metric must never fail what it measures.
    if (!Number.isFinite(value)) return;
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += value;
    this.count++;
    this.use();
  }

  override clear(): void {
    super.clear();
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}

/** A Prometheus histogram whose label sets are bound once (`series`): an observation is a bucket search and three additions. */
export class BoundHistogram extends BoundMetric<Observations> {
  readonly type = 'histogram';
  readonly bounds: readonly number[];

  constructor(name: string, help: string, buckets: readonly number[], registry: Registry) {
    super(name, help, registry);
    this.bounds = [...buckets].sort((a, b) => a - b);
  }

  /** The series of one label set (label name -> value, in the metric's label order); bind it once and keep it. */
  series(labels: Record<string, string>): HistogramSeries {
    return this.bind(new Observations(this.used, { ...labels }, this.bounds));
  }

  async get(): Promise<{ name: string; help: string; type: 'histogram'; values: MetricValue[]; aggregator: 'sum' }> {
    const values: MetricValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const series of this.used) {
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
}
