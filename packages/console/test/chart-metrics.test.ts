import { bucketDelta, latencyBuckets, quantile, ratesBy, totalsBy, type MetricsSnapshot } from '../src/charts/metrics';

/** The live view's arithmetic over two metrics readings (packages/console/src/charts/metrics.ts). */
const reading = (time: number, counters: MetricsSnapshot['counters'], histograms: MetricsSnapshot['histograms'] = {}): MetricsSnapshot => ({
  instance: 'default',
  time,
  since: 0,
  counters,
  gauges: {},
  histograms,
});
const series = (labels: Record<string, string>, value: number) => ({ labels, value });

describe('rates', () => {
  it('sums a counter by one label and divides the growth by the seconds between readings', () => {
    const before = reading(1000, { c: [series({ hub: 'a', status: 'assigned' }, 4), series({ hub: 'b', status: 'assigned' }, 6), series({ hub: '', status: 'refused' }, 1)] });
    const after = reading(3000, { c: [series({ hub: 'a', status: 'assigned' }, 8), series({ hub: 'b', status: 'assigned' }, 6), series({ hub: '', status: 'refused' }, 3)] });
    expect(totalsBy(after, 'c', 'status')).toEqual(new Map([['assigned', 14], ['refused', 3]]));
    expect(ratesBy(before, after, 'c', 'status')).toEqual(new Map([['assigned', 2], ['refused', 1]]));
    expect(ratesBy(before, after, 'c', 'hub')).toEqual(new Map([['a', 2], ['b', 0], ['', 1]]));
  });

  it('takes a counter that went down as counted since a restart, and a series new in the second reading from zero', () => {
    const before = reading(0, { c: [series({ status: 'assigned' }, 100)] });
    const after = reading(2000, { c: [series({ status: 'assigned' }, 6), series({ status: 'failed' }, 2)] });
    expect(ratesBy(before, after, 'c', 'status')).toEqual(new Map([['assigned', 3], ['failed', 1]]));
  });

  it('gives no rate when the readings are not in time order', () => {
    const one = reading(5000, { c: [series({ status: 'assigned' }, 1)] });
    expect(ratesBy(one, one, 'c', 'status').size).toBe(0);
  });
});

describe('latency percentiles', () => {
  const le = [0.01, 0.1, 1];
  const histogram = (protocol: string, counts: number[], count: number) => ({ labels: { protocol, phase: 'total' }, le, counts, count, sum: 0 });

  it('merges the protocols and interpolates inside the bucket that holds the rank', () => {
    const snap = reading(0, {}, {
      opendps_registration_duration_seconds: [histogram('mqtt', [2, 6, 8], 8), histogram('amqp', [0, 2, 2], 2), { ...histogram('mqtt', [9, 9, 9], 9), labels: { protocol: 'mqtt', phase: 'attest' } }],
    });
    const buckets = latencyBuckets(snap);
    expect(buckets).toEqual({ le, counts: [2, 8, 10], count: 10 });
    // p50: rank 5 lies in (0.01, 0.1] holding ranks 3..8: 0.01 + 0.09 * (5 - 2) / 6.
    expect(quantile(0.5, buckets)).toBeCloseTo(0.055, 10);
    // p10: rank 1 in the first bucket, from 0: 0.01 * 1 / 2.
    expect(quantile(0.1, buckets)).toBeCloseTo(0.005, 10);
    // p99: rank 9.9 in (0.1, 1].
    expect(quantile(0.99, buckets)).toBeCloseTo(0.1 + 0.9 * (1.9 / 2), 10);
  });

  it('answers the last finite bound for ranks in +Inf, and nothing when nothing was observed', () => {
    expect(quantile(0.99, { le, counts: [0, 0, 1], count: 4 })).toBe(1);
    expect(quantile(0.5, { le, counts: [0, 0, 0], count: 0 })).toBeUndefined();
    expect(quantile(0.5, undefined)).toBeUndefined();
  });

  it('keeps only what was observed between two readings', () => {
    const earlier = { le, counts: [1, 2, 3], count: 3 };
    const later = { le, counts: [1, 5, 7], count: 8 };
    expect(bucketDelta(earlier, later)).toEqual({ le, counts: [0, 3, 4], count: 5 });
    expect(bucketDelta(later, later)).toBeUndefined();
    // A node that restarted: what it counted since.
    expect(bucketDelta(later, earlier)).toEqual(earlier);
  });
});
