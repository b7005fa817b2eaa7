import { Counter, Histogram, Registry } from 'prom-client';
import { BoundCounter, BoundHistogram } from '../src/observability/bound-metrics';

const BUCKETS = [0.001, 0.01, 0.1, 1, 10];

/** The same observations in prom-client's Histogram and in ours: the same exposition and the same `get()`. */
function both() {
  const theirs = new Registry();
  const ours = new Registry();
  const reference = new Histogram({ name: 'h_seconds', help: 'A "help" \\ text.', labelNames: ['protocol', 'phase'], buckets: BUCKETS, registers: [theirs] });
  const bound = new BoundHistogram('h_seconds', 'A "help" \\ text.', BUCKETS, ours);
  const series = new Map<string, ReturnType<BoundHistogram['series']>>();
  const observe = (protocol: string, phase: string, value: number) => {
    reference.labels(protocol, phase).observe(value);
    const key = `${protocol}/${phase}`;
    if (!series.has(key)) series.set(key, bound.series({ protocol, phase }));
    series.get(key)!.observe(value);
  };
  return { theirs, ours, reference, bound, series, observe };
}

test('the exposition is prom-client\'s, label sets in the order first observed, bounds included', async () => {
  const { theirs, ours, bound, observe } = both();
  // Bound but never observed: not exposed (prom-client creates a series on its first observation).
  bound.series({ protocol: 'amqp', phase: 'total' });
  for (const [protocol, phase, value] of [
    ['mqtt', 'total', 0.004],
    ['https', 'attest', 0.001],
    ['mqtt', 'total', 0.01],
    ['mqtt', 'total', 42],
    ['mqtt', 'assign', 0],
    ['we"ird\\\nlabel', 'total', 0.2],
  ] as const) {
    observe(protocol, phase, value);
  }
  expect(await ours.metrics()).toBe(await theirs.metrics());
  expect(await ours.metrics()).toContain('h_seconds_bucket{le="0.01",protocol="mqtt",phase="total"} 2');
  const theirsJson = await theirs.getMetricsAsJSON();
  expect(JSON.parse(JSON.stringify(await ours.getMetricsAsJSON()))).toEqual(JSON.parse(JSON.stringify(theirsJson)));
});

test('reset empties every series, which appear again from their next observation', async () => {
  const { theirs, ours, observe } = both();
  observe('mqtt', 'total', 0.5);
  observe('https', 'total', 0.5);
  theirs.resetMetrics();
  ours.resetMetrics();
  expect(await ours.metrics()).toBe(await theirs.metrics());
  observe('https', 'total', 2);
  expect(await ours.metrics()).toBe(await theirs.metrics());
  expect(await ours.metrics()).toContain('h_seconds_count{protocol="https",phase="total"} 1');
});

test('a value that is not a finite number is dropped, never thrown', async () => {
  const { ours, bound } = both();
  const series = bound.series({ protocol: 'mqtt', phase: 'total' });
  expect(() => series.observe(Number.NaN)).not.toThrow();
  series.observe(Number.POSITIVE_INFINITY);
  expect(await ours.metrics()).not.toContain('h_seconds_count');
});

test('a bound counter exposes what prom-client\'s Counter does for the same increments, reset included', async () => {
  const theirs = new Registry();
  const ours = new Registry();
  const reference = new Counter({ name: 'c_total', help: 'Counted.', labelNames: ['instance', 'status'], registers: [theirs] });
  const bound = new BoundCounter('c_total', 'Counted.', ours);
  const bind = new Map<string, ReturnType<BoundCounter['series']>>();
  const inc = (instance: string, status: string, by?: number) => {
    reference.labels(instance, status).inc(by);
    const key = `${instance}/${status}`;
    if (!bind.has(key)) bind.set(key, bound.series({ instance, status }));
    bind.get(key)!.inc(by);
  };
  bound.series({ instance: 'never', status: 'counted' });
  inc('default', 'assigned');
  inc('other"one', 'refused', 0);
  inc('default', 'failed', 2.5);
  inc('default', 'assigned');
  expect(await ours.metrics()).toBe(await theirs.metrics());
  expect(await ours.metrics()).toContain('c_total{instance="default",status="assigned"} 2');
  expect(JSON.parse(JSON.stringify(await ours.getMetricsAsJSON()))).toEqual(JSON.parse(JSON.stringify(await theirs.getMetricsAsJSON())));
  theirs.resetMetrics();
  ours.resetMetrics();
  expect(await ours.metrics()).toBe(await theirs.metrics());
  inc('default', 'failed');
  expect(await ours.metrics()).toBe(await theirs.metrics());
  // A decrease is dropped, never thrown (prom-client throws).
  expect(() => bind.get('default/failed')!.inc(-1)).not.toThrow();
  expect(await ours.metrics()).toContain('c_total{instance="default",status="failed"} 1');
});
