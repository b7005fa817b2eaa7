/** Schedules `fire` after `ms` and returns what cancels it; tests pass a fake clock's. */
export type Schedule = (ms: number, fire: () => void) => () => void;

export const realSchedule: Schedule = (ms, fire) => {
  const timer = setTimeout(fire, ms);
  timer.unref();
  return () => clearTimeout(timer);
};

/**
 * A refusal the device does not retry on this connection: every 4xx but 429 (docs/device-wire.md
 * §6: the SDK gives up on 300-428 and retries 429 and 5xx after `retry-after`).
 */
export function isFinalRefusal(status: number): boolean {
  return status >= 400 && status < 500 && status !== 429;
}

/**
 * When a DPS connection has had its chance. After CONNECT a device must send a request within
 * `timeoutMs`; while a request is in flight nothing runs out; after each answer the device has
 * `timeoutMs` plus the answer's `retry-after` to poll or retry (a polling device waits exactly
 * that long; an assigned one disconnects). So keepalive 0 cannot hold a connection open.
 */
export class RequestDeadline {
  private inFlight = 0;
  private cancel: (() => void) | undefined;
  private stopped = false;

  /** Set once a request was refused for good; the device then only has `graceMs` to leave. */
  refused = false;

  constructor(
    private readonly timeoutMs: number,
    private readonly graceMs: number,
    private readonly schedule: Schedule,
    private readonly expire: (reason: string) => void,
  ) {}

  /** CONNECT accepted: the first request is due. */
  connected(): void {
    this.arm(this.timeoutMs, `no request within ${this.timeoutMs} ms of CONNECT`);
  }

  requestStarted(): void {
    this.inFlight += 1;
    this.disarm();
  }

  requestAnswered(status: number, retryAfterSeconds: number | undefined): void {
    this.inFlight = Math.max(0, this.inFlight - 1);
    if (isFinalRefusal(status) || this.refused) {
      // The SDK unsubscribes and disconnects itself after a refusal, and waits for that before
      // reporting it: the connection is left open for that long, no longer.
      this.refused = true;
      this.arm(this.graceMs, `request refused with ${status}; the device did not disconnect within ${this.graceMs} ms`);
      return;
    }
    if (this.inFlight > 0) return;
    const wait = this.timeoutMs + (retryAfterSeconds ?? 0) * 1000;
    this.arm(wait, `no request within ${wait} ms of the last answer`);
  }

  stop(): void {
    this.stopped = true;
    this.disarm();
  }

  private arm(ms: number, reason: string): void {
    this.disarm();
    if (this.stopped) return;
    this.cancel = this.schedule(ms, () => {
      this.cancel = undefined;
      if (!this.stopped) this.expire(reason);
    });
  }

  private disarm(): void {
    this.cancel?.();
    this.cancel = undefined;
  }
}
