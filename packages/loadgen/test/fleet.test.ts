import { startBaselineBroker, type BaselineBroker } from '../src/baseline';
import { assertLoopback, groupDerivedKeys, runDeviceFleet, runFleet } from '../src/fleet';
import { createLoopbackTls, type LoopbackTls } from '../src/tls';

describe('runFleet (the worker pool)', () => {
  it('runs every index once with at most C in flight and summarises the latencies', async () => {
    let inFlight = 0;
    let peak = 0;
    const seen: number[] = [];
    const result = await runFleet({
      count: 25,
      concurrency: 4,
      register: async (index) => {
        inFlight += 1;
        peak = Math.max(peak, inFlight);
        seen.push(index);
        await new Promise((resolve) => setTimeout(resolve, 2));
        inFlight -= 1;
        return { latencyMs: index + 1 };
      },
    });
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    expect(peak).toBe(4);
    expect(result).toMatchObject({ count: 25, succeeded: 25, failed: 0, notStarted: 0 });
    expect(result.latency).toMatchObject({ count: 25, p50: 13, p99: 25, max: 25 });
    expect(result.perSecond).toBeCloseTo((25 * 1000) / result.elapsedMs, 6);
  });

  it('counts failures apart and keeps going', async () => {
    const result = await runFleet({
      count: 10,
      concurrency: 3,
      register: async (index) => {
        if (index % 5 === 0) throw new Error(`device ${index} refused`);
        return { latencyMs: 1 };
      },
    });
    expect(result.succeeded).toBe(8);
    expect(result.failures.map((f) => f.index).sort()).toEqual([0, 5]);
    expect(result.failures[0]?.message).toMatch(/refused/);
  });

  it('stops starting work when its time budget is spent', async () => {
    const result = await runFleet({
      count: 1000,
      concurrency: 2,
      maxDurationMs: 50,
      register: () => new Promise<{ latencyMs: number }>((resolve) => setTimeout(() => resolve({ latencyMs: 20 }), 20)),
    });
    expect(result.notStarted).toBeGreaterThan(900);
    expect(result.succeeded + result.notStarted).toBe(1000);
  });

  it('refuses unbounded or nonsensical sizes', async () => {
    const register = async () => ({ latencyMs: 1 });
    await expect(runFleet({ count: 0, concurrency: 1, register })).rejects.toThrow(RangeError);
    await expect(runFleet({ count: 1.5, concurrency: 1, register })).rejects.toThrow(RangeError);
    await expect(runFleet({ count: 2_000_000, concurrency: 1, register })).rejects.toThrow(RangeError);
    await expect(runFleet({ count: 5, concurrency: 0, register })).rejects.toThrow(RangeError);
  });
});

describe('assertLoopback', () => {
  it('accepts this machine only', () => {
    for (const host of ['localhost', '127.0.0.1', '127.3.2.1', '::1', '[::1]']) expect(() => assertLoopback(host)).not.toThrow();
    for (const host of ['example.com', '10.0.0.1', '0.0.0.0', 'localhost.example.com', '128.0.0.1']) {
      expect(() => assertLoopback(host)).toThrow(/loopback only/);
    }
  });
});

describe('a fleet of 20 devices against the baseline broker', () => {
  let tls: LoopbackTls;
  let broker: BaselineBroker;
  beforeAll(async () => {
    tls = createLoopbackTls();
    broker = await startBaselineBroker({ cert: tls.cert, key: tls.key, assignedHub: 'baseline-hub' });
  });
  afterAll(() => broker.close());

  it('registers every device over TLS and reports rate and percentiles', async () => {
    const result = await runDeviceFleet({
      target: { host: broker.host, port: broker.port, ca: tls.ca, idScope: '0ne00000A0A' },
      deviceKey: groupDerivedKeys(Buffer.alloc(32, 1).toString('base64')),
      count: 20,
      concurrency: 5,
      prefix: 'fleet-',
      timeoutMs: 10_000,
    });
    expect(result.failures).toEqual([]);
    expect(result.succeeded).toBe(20);
    expect(broker.answered).toBe(20);
    expect(new Set(result.results.map((r) => r.deviceId))).toEqual(new Set(Array.from({ length: 20 }, (_, i) => `fleet-${i}`)));
    expect(result.results.every((r) => r.assignedHub === 'baseline-hub')).toBe(true);
    expect(result.perSecond).toBeGreaterThan(0);
    expect(result.latency.p99).toBeGreaterThanOrEqual(result.latency.p50);
  });

  it('will not aim at another machine', () => {
    expect(() =>
      runDeviceFleet({
        target: { host: '192.0.2.1', port: 8883, ca: tls.ca, idScope: 'x' },
        deviceKey: () => 'k',
        count: 1,
        concurrency: 1,
        prefix: 'p',
      }),
    ).toThrow(/loopback only/);
  });
});
