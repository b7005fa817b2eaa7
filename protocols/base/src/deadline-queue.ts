/** Schedules `fire` after `ms` and returns what cancels it. */
export type Schedule = (ms: number, fire: () => void) => () => void;

/** The clock and one-shot timer a DeadlineQueue runs on; tests pass a fake clock's. */
export interface Timers {
  now(): number;
  schedule: Schedule;
}

export const realTimers: Timers = {
  now: () => performance.now(),
  schedule: (ms, fire) => {
    const timer = setTimeout(fire, ms);
    timer.unref();
    return () => clearTimeout(timer);
  },
};

/**
 * What a DeadlineQueue holds: the connection's own object (its request deadline) is the entry, so
 * arming a deadline allocates nothing.
 */
export abstract class QueuedDeadline {
  /** @internal When it runs out, on the queue's clock. */
  dueAt = 0;
  /** @internal */
  prev: QueuedDeadline | undefined = undefined;
  /** @internal */
  next: QueuedDeadline | undefined = undefined;
  /** @internal The list it is armed in, if armed. */
  list: DeadlineList | undefined = undefined;

  /** Called once when the deadline runs out (not when it was disarmed first). */
  abstract expired(): void;
}

/**
 * Many connections' deadlines on a few timers. Node gives each `setTimeout` a Timeout object and a
 * callback; ten thousand idle connections would hold ten thousand of each (docs/scale.md). Here
 * deadlines of the same duration sit in one list in the order they were armed (hence in the order
 * they run out), and each list has one timer, for its head: exact to the millisecond, like a
 * timer of its own, at the cost of two links in the entry.
 */
export class DeadlineQueue {
  private readonly lists = new Map<number, DeadlineList>();

  constructor(private readonly timers: Timers = realTimers) {}

  /** (Re)arms `entry` to run out `ms` from now. */
  arm(entry: QueuedDeadline, ms: number): void {
    this.disarm(entry);
    let list = this.lists.get(ms);
    if (!list) {
      list = new DeadlineList(ms, this.timers, this.lists);
      this.lists.set(ms, list);
    }
    list.push(entry, this.timers.now() + ms);
  }

  disarm(entry: QueuedDeadline): void {
    entry.list?.remove(entry);
  }

  /** Deadlines armed now (for tests and metrics). */
  get armed(): number {
    let count = 0;
    for (const list of this.lists.values()) count += list.size;
    return count;
  }
}

/** @internal The deadlines of one duration, soonest first, and the timer of the first. */
export class DeadlineList {
  private head: QueuedDeadline | undefined = undefined;
  private tail: QueuedDeadline | undefined = undefined;
  private cancel: (() => void) | undefined = undefined;
  /** When the timer is set to fire, on the queue's clock. */
  private firesAt = 0;
  size = 0;

  constructor(
    private readonly ms: number,
    private readonly timers: Timers,
    private readonly owner: Map<number, DeadlineList>,
  ) {}

  push(entry: QueuedDeadline, dueAt: number): void {
    // dueAt only grows within one list: its entries share one duration and the clock is monotonic.
    entry.dueAt = dueAt;
    entry.list = this;
    entry.prev = this.tail;
    entry.next = undefined;
    if (this.tail) this.tail.next = entry;
    else this.head = entry;
    this.tail = entry;
    this.size += 1;
    // Same duration, so nothing armed later is due sooner: the timer stays on the head.
    if (!this.cancel) this.setTimer((this.head as QueuedDeadline).dueAt);
  }

  remove(entry: QueuedDeadline): void {
    if (entry.prev) entry.prev.next = entry.next;
    else this.head = entry.next;
    if (entry.next) entry.next.prev = entry.prev;
    else this.tail = entry.prev;
    entry.prev = entry.next = entry.list = undefined;
    this.size -= 1;
    // A removed head leaves the timer as it is: it fires early, finds nothing due and moves on.
    if (this.size === 0) this.close();
  }

  private setTimer(dueAt: number): void {
    this.firesAt = dueAt;
    this.cancel = this.timers.schedule(Math.max(0, dueAt - this.timers.now()), () => this.fire());
  }

  private fire(): void {
    this.cancel = undefined;
    // The clock may read a hair before the time the timer was set for; never fire a deadline early,
    // never fire one late because of that.
    const now = Math.max(this.timers.now(), this.firesAt);
    for (let entry = this.head; entry && entry.dueAt <= now; entry = this.head) {
      this.remove(entry);
      entry.expired();
    }
    if (this.head && !this.cancel) this.setTimer(this.head.dueAt);
  }

  private close(): void {
    this.cancel?.();
    this.cancel = undefined;
    this.owner.delete(this.ms);
  }
}
