import { percentile, ratePerSecond, ratio, summarizeLatencies } from '../src/stats';

describe('percentile (nearest rank)', () => {
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1); // 1..100

  it('picks the smallest sample with p percent at or below it', () => {
    expect(percentile(hundred, 50)).toBe(50);
    expect(percentile(hundred, 99)).toBe(99);
    expect(percentile(hundred, 100)).toBe(100);
    expect(percentile(hundred, 1)).toBe(1);
    expect(percentile(hundred, 0.5)).toBe(1);
  });

  it('always answers a measured value, never an interpolation', () => {
    expect(percentile([10, 20], 50)).toBe(10);
    expect(percentile([10, 20, 30], 50)).toBe(20);
    expect(percentile([10, 20, 30, 40], 99)).toBe(40);
    expect(percentile([7], 99)).toBe(7);
  });

  it('has no value for no samples, and refuses a percentile outside (0, 100]', () => {
    expect(percentile([], 50)).toBeNaN();
    expect(() => percentile([1], 0)).toThrow(RangeError);
    expect(() => percentile([1], 101)).toThrow(RangeError);
    expect(() => percentile([1], Number.NaN)).toThrow(RangeError);
  });
});

describe('summarizeLatencies', () => {
  it('sorts its input (without changing it) before ranking', () => {
    const samples = [5, 1, 4, 2, 3, 100, 6, 7, 8, 9];
    const summary = summarizeLatencies(samples);
    expect(summary).toEqual({ count: 10, p50: 5, p90: 9, p99: 100, max: 100, mean: 14.5 });
    expect(samples[0]).toBe(5);
  });

  it('a long tail moves p99 but not p50', () => {
    const samples = [...Array.from({ length: 990 }, () => 10), ...Array.from({ length: 10 }, () => 500)];
    const summary = summarizeLatencies(samples);
    expect(summary.p50).toBe(10);
    expect(summary.p99).toBe(10);
    const heavier = summarizeLatencies([...samples.slice(0, 980), ...Array.from({ length: 20 }, () => 500)]);
    expect(heavier.p99).toBe(500);
  });

  it('is empty-safe', () => {
    const summary = summarizeLatencies([]);
    expect(summary.count).toBe(0);
    expect(summary.p50).toBeNaN();
    expect(summary.mean).toBeNaN();
  });
});

describe('rates', () => {
  it('counts completions per second of elapsed time', () => {
    expect(ratePerSecond(2000, 4000)).toBe(500);
    expect(ratePerSecond(3, 1500)).toBe(2);
    expect(ratePerSecond(0, 0)).toBe(0);
    expect(() => ratePerSecond(5, 0)).toThrow(RangeError);
  });

  it('ratio is NaN without a positive reference', () => {
    expect(ratio(300, 400)).toBe(0.75);
    expect(ratio(300, 0)).toBeNaN();
  });
});
