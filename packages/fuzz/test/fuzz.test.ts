import path from 'node:path';
import { createProbeEnrollment, LISTENER_NAMES, LISTENERS, parseListeners, Rng, runFuzz, spawnTarget, type Target } from '../src';

/**
 * The short seeded pass CI runs: every listener of the built server (`tsc -b` first) gets a few
 * hundred malformed frames; nothing may crash, hang, leak or stop registering devices.
 * OPENDPS_FUZZ_LISTENERS=a,b narrows it for local runs.
 */
const CLI = path.resolve(__dirname, '../../server/dist/cli.js');
const listeners = parseListeners(process.env.OPENDPS_FUZZ_LISTENERS ?? LISTENER_NAMES.join(','));

describe('pnpm fuzz, a short seeded pass', () => {
  let target: Target;
  beforeAll(async () => {
    target = await spawnTarget({ cli: CLI });
    await createProbeEnrollment(target);
  }, 60_000);
  afterAll(() => target?.stop());

  test('the same seed makes the same frames, another seed others', () => {
    const ctx = { idScope: '0ne00000001', registrationId: 'r', deviceToken: 't', hubHost: 'h:1', serviceToken: 's', hubDeviceToken: 'd', hubServiceToken: 'o' };
    for (const name of LISTENER_NAMES) {
      const make = (seed: number) => Buffer.concat(LISTENERS[name].connection(Rng.forBatch(seed, name, 3), ctx)).toString('hex');
      expect(make(7)).toBe(make(7));
      expect(make(7)).not.toBe(make(8));
    }
  });

  test(`${listeners.join(', ')}: no crash, hang, leaked fd, open connection or 5xx; the probe registers after every batch`, async () => {
    const report = await runFuzz(target, { listeners, frames: 1500, batchFrames: 500, seed: 1, hangMs: 15_000, graceMs: 5000, maxRssMb: 512 });
    expect(report.findings).toEqual([]);
    for (const result of report.results) {
      expect(result).toMatchObject({ crashes: 0, hangs: 0, leakedFds: 0, openConnections: 0, serverErrors: 0, rssExceeded: 0 });
      expect(result.frames).toBeGreaterThanOrEqual(1500);
      expect(result.registrationsOk).toBe(result.registrations);
      expect(result.registrations).toBeGreaterThan(0);
    }
    expect(report.clean).toBe(true);
  }, 120_000);

  test('a server over the RSS bound is reported, killed and replaced by a fresh one', async () => {
    const report = await runFuzz(target, { listeners: ['mqtt'], frames: 50, batchFrames: 50, maxRssMb: 1 });
    expect(report.clean).toBe(false);
    expect(report.results[0]?.rssExceeded).toBe(1);
    expect(report.findings.map((f) => f.kind)).toEqual(['rss']);
    expect(await target.alive()).toBe(true);
  }, 60_000);
});
