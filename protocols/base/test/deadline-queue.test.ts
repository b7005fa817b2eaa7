import fc from 'fast-check';
import { DeadlineQueue, QueuedDeadline, type Schedule, type Timers } from '../src';

/** A clock the test moves: timers fire only when `advance` passes their due time, in due order. */
class FakeClock implements Timers {
  private time = 0;
  private timers: Array<{ due: number; fire: () => void }> = [];

  readonly now = (): number => this.time;

  readonly schedule: Schedule = (ms, fire) => {
    const timer = { due: this.time + ms, fire };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((other) => other !== timer);
    };
  };

  get pending(): number {
    return this.timers.length;
  }

  advance(ms: number): void {
    const until = this.time + ms;
    for (;;) {
      const next = this.timers.filter((timer) => timer.due <= until).sort((a, b) => a.due - b.due)[0];
      if (!next) break;
      this.timers = this.timers.filter((timer) => timer !== next);
      this.time = next.due;
      next.fire();
    }
    this.time = until;
  }
}

class Entry extends QueuedDeadline {
  constructor(
    readonly name: string,
    private readonly log: Array<[string, number]>,
    private readonly clock: FakeClock,
    private readonly onExpiry?: () => void,
  ) {
    super();
  }

  expired(): void {
    this.log.push([this.name, this.clock.now()]);
    this.onExpiry?.();
  }
}

function setup() {
  const clock = new FakeClock();
  const queue = new DeadlineQueue(clock);
  const log: Array<[string, number]> = [];
  const entry = (name: string, onExpiry?: () => void) => new Entry(name, log, clock, onExpiry);
  return { clock, queue, log, entry };
}

describe('DeadlineQueue', () => {
  test('deadlines of one duration run out in order, each exactly when due, on one timer', () => {
    const { clock, queue, log, entry } = setup();
    for (let i = 0; i < 1000; i++) {
      queue.arm(entry(`d${i}`), 30_000);
      clock.advance(i % 3);
    }
    expect(clock.pending).toBe(1);
    expect(queue.armed).toBe(1000);
    clock.advance(30_000 - 1);
    // Armed at t, due at t + 30,000; the first was armed at 0.
    expect(log[0]).toEqual(['d0', 30_000]);
    for (const [name, at] of log) {
      const i = Number(name.slice(1));
      const armedAt = Array.from({ length: i }, (_, k) => k % 3).reduce((a, b) => a + b, 0);
      expect(at).toBe(armedAt + 30_000);
    }
    clock.advance(3_000);
    expect(log).toHaveLength(1000);
    expect(clock.pending).toBe(0);
    expect(queue.armed).toBe(0);
  });

  test('a disarmed deadline never runs out, and the one after it is not fired early', () => {
    const { clock, queue, log, entry } = setup();
    const first = entry('first');
    queue.arm(first, 100);
    clock.advance(10);
    queue.arm(entry('second'), 100);
    queue.disarm(first);
    clock.advance(99);
    expect(log).toEqual([]);
    clock.advance(1);
    expect(log).toEqual([['second', 110]]);
  });

  test('re-arming moves the deadline; the last one removed cancels the timer', () => {
    const { clock, queue, log, entry } = setup();
    const a = entry('a');
    queue.arm(a, 100);
    clock.advance(50);
    queue.arm(a, 100);
    clock.advance(99);
    expect(log).toEqual([]);
    queue.arm(a, 5_000);
    expect(clock.pending).toBe(1);
    queue.disarm(a);
    queue.disarm(a); // twice is harmless
    expect(clock.pending).toBe(0);
    clock.advance(10_000);
    expect(log).toEqual([]);
  });

  test('one timer per duration, not per deadline', () => {
    const { clock, queue, log, entry } = setup();
    for (let i = 0; i < 10; i++) {
      queue.arm(entry(`short${i}`), 5_000);
      queue.arm(entry(`long${i}`), 30_000);
    }
    expect(clock.pending).toBe(2);
    clock.advance(5_000);
    expect(log.map(([name]) => name)).toEqual(Array.from({ length: 10 }, (_, i) => `short${i}`));
    expect(clock.pending).toBe(1);
  });

  test('a deadline that runs out may arm itself or another again', () => {
    const { clock, queue, log, entry } = setup();
    const again: Entry = entry('again', () => {
      if (log.length < 3) queue.arm(again, 10);
    });
    queue.arm(again, 10);
    queue.arm(entry('other'), 10);
    clock.advance(100);
    expect(log).toEqual([
      ['again', 10],
      ['other', 10],
      ['again', 20],
    ]);
    expect(queue.armed).toBe(0);
  });

  test('matches a timer per deadline for any sequence of arms, disarms and waits', () => {
    type Op = { kind: 'arm'; id: number; ms: number } | { kind: 'disarm'; id: number } | { kind: 'wait'; ms: number };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ kind: fc.constant('arm' as const), id: fc.integer({ min: 0, max: 5 }), ms: fc.constantFrom(0, 5, 100, 1_000) }),
      fc.record({ kind: fc.constant('disarm' as const), id: fc.integer({ min: 0, max: 5 }) }),
      fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 400 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const { clock, queue, log, entry } = setup();
        const entries = Array.from({ length: 6 }, (_, id) => entry(String(id)));
        // The reference: each deadline's due time, fired in due order (ties in arming order).
        const due = new Map<number, { at: number; seq: number }>();
        const expected: Array<[string, number]> = [];
        let now = 0;
        let seq = 0;
        const runUntil = (until: number) => {
          const fired = [...due].filter(([, d]) => d.at <= until).sort((a, b) => a[1].at - b[1].at || a[1].seq - b[1].seq);
          for (const [id, d] of fired) {
            expected.push([String(id), d.at]);
            due.delete(id);
          }
        };
        for (const step of ops) {
          if (step.kind === 'arm') {
            queue.arm(entries[step.id] as Entry, step.ms);
            due.set(step.id, { at: now + step.ms, seq: seq++ });
          } else if (step.kind === 'disarm') {
            queue.disarm(entries[step.id] as Entry);
            due.delete(step.id);
          } else {
            runUntil(now + step.ms);
            clock.advance(step.ms);
            now += step.ms;
          }
        }
        runUntil(now + 10_000);
        clock.advance(10_000);
        // Order among deadlines due at the same moment in different durations may differ; times may not.
        const byName = (a: [string, number], b: [string, number]) => a[1] - b[1] || a[0].localeCompare(b[0]);
        expect([...log].sort(byName)).toEqual([...expected].sort(byName));
        expect(clock.pending).toBe(0);
      }),
      { seed: 1, numRuns: 300 },
    );
  });
});
