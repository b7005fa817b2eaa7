import { QueuedDeadline, type DeadlineQueue } from '@opendps/protocol-base';

/**
 * A refusal the device does not retry on this connection: every 4xx but 429 (docs/device-wire.md
 * §6: the SDK gives up on 300-428 and retries 429 and 5xx after `retry-after`).
 */
export function isFinalRefusal(status: number): boolean {
  return status >= 400 && status < 500 && status !== 429;
}

/** What a deadline ends when it runs out: the connection, with the reason logged. */
export interface Expirable {
  close(reason: string): void;
}

/** Why a deadline is armed; the reason is written out only if it runs out. */
const enum Why {
  FirstRequest,
  NextRequest,
  Refused,
}

/**
 * When a DPS connection has had its chance. After CONNECT a device must send a request within
 * `timeoutMs`; while a request is in flight nothing runs out; after each answer the device has
 * `timeoutMs` plus the answer's `retry-after` to poll or retry (a polling device waits exactly
 * that long; an assigned one disconnects). So keepalive 0 cannot hold a connection open.
 * One per connection, so it holds numbers, not strings, closures or a timer of its own: it waits in
 * the front-end's DeadlineQueue (docs/scale.md).
 */
export class RequestDeadline extends QueuedDeadline {
  private inFlight = 0;
  private stopped = false;
  private why = Why.FirstRequest;
  private armedMs = 0;
  private refusedWith = 0;

  /** Set once a request was refused for good; the device then only has `graceMs` to leave. */
  refused = false;

  constructor(
    private readonly timeoutMs: number,
    private readonly graceMs: number,
    private readonly queue: DeadlineQueue,
    private readonly target: Expirable,
  ) {
    super();
  }

  /** CONNECT accepted: the first request is due. */
  connected(): void {
    this.arm(this.timeoutMs, Why.FirstRequest);
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
      this.refusedWith = status;
      this.arm(this.graceMs, Why.Refused);
      return;
    }
    if (this.inFlight > 0) return;
    this.arm(this.timeoutMs + (retryAfterSeconds ?? 0) * 1000, Why.NextRequest);
  }

  stop(): void {
    this.stopped = true;
    this.disarm();
  }

  /** Called by the queue when the armed deadline runs out. */
  expired(): void {
    if (!this.stopped) this.target.close(this.reason());
  }

  private reason(): string {
    if (this.why === Why.FirstRequest) return `no request within ${this.armedMs} ms of CONNECT`;
    if (this.why === Why.NextRequest) return `no request within ${this.armedMs} ms of the last answer`;
    return `request refused with ${this.refusedWith}; the device did not disconnect within ${this.armedMs} ms`;
  }

  private arm(ms: number, why: Why): void {
    this.disarm();
    if (this.stopped) return;
    this.why = why;
    this.armedMs = ms;
    this.queue.arm(this, ms);
  }

  private disarm(): void {
    this.queue.disarm(this);
  }
}
