import type { Server, Socket } from 'node:net';
import { silentLogger, type Logger } from '@opendps/model';

/**
 * Open connections allowed on one listener, from one source address and in all. The defaults leave
 * room for a load tester driving 10,000 devices from one host (loopback included) at twice that,
 * while one address still cannot take every descriptor the process has.
 */
export const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS = 20_000;
export const DEFAULT_MAX_CONNECTIONS = 50_000;
/** At most one refusal log line per interval; the refusals in between are summed into the next. */
export const DEFAULT_REFUSAL_LOG_INTERVAL_MS = 10_000;

export interface ConnectionLimitsOptions {
  /** Open connections from one source address (default 20,000). */
  maxPerAddress?: number;
  /** Open connections on the listener (default 50,000). */
  maxTotal?: number;
}

export interface ConnectionLimitsSettings extends ConnectionLimitsOptions {
  logger?: Logger;
  /** Names the listener in log lines (`MQTT`, `HTTPS`, `hub-1`). */
  name?: string;
  refusalLogIntervalMs?: number;
  /** The clock of the refusal log interval (tests pass their own). */
  now?: () => number;
}

type Reason = 'perAddress' | 'total';

/** The address a connection counts against: an IPv4-mapped IPv6 address counts as its IPv4 address. */
export function sourceAddress(remoteAddress: string | undefined): string {
  if (!remoteAddress) return 'unknown';
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(remoteAddress);
  return mapped?.[1] ?? remoteAddress.toLowerCase();
}

/** At most this many distinct addresses are tallied per log interval; the rest count as `other`. */
const TALLIED_ADDRESSES = 1_000;

/**
 * Connection limits applied at TCP accept, before TLS: a connection over a limit is destroyed at
 * once, so it costs neither a handshake nor a protocol session. Refusals are logged in aggregate.
 */
export class ConnectionLimits {
  readonly maxPerAddress: number;
  readonly maxTotal: number;
  private readonly byAddress = new Map<string, number>();
  private total = 0;
  private readonly logger: Logger;
  private readonly name: string;
  private readonly interval: number;
  private readonly now: () => number;
  private nextLogAt = 0;
  private refused = { perAddress: 0, total: 0 };
  private readonly refusedFrom = new Map<string, number>();
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(settings: ConnectionLimitsSettings = {}) {
    this.maxPerAddress = positive(settings.maxPerAddress, DEFAULT_MAX_CONNECTIONS_PER_ADDRESS, 'maxPerAddress');
    this.maxTotal = positive(settings.maxTotal, DEFAULT_MAX_CONNECTIONS, 'maxTotal');
    this.logger = settings.logger ?? silentLogger;
    this.name = settings.name ?? 'listener';
    this.interval = settings.refusalLogIntervalMs ?? DEFAULT_REFUSAL_LOG_INTERVAL_MS;
    this.now = settings.now ?? Date.now;
  }

  /** Applies the limits to every connection `server` accepts, ahead of its own handlers (TLS, HTTP). */
  attach(server: Server): void {
    server.prependListener('connection', (socket: Socket) => {
      this.admit(socket);
    });
  }

  /** Counts the socket in until it closes; over a limit it is destroyed at once and false returned. */
  admit(socket: Socket): boolean {
    const address = sourceAddress(socket.remoteAddress);
    const fromAddress = this.byAddress.get(address) ?? 0;
    const reason: Reason | undefined =
      this.total >= this.maxTotal ? 'total' : fromAddress >= this.maxPerAddress ? 'perAddress' : undefined;
    if (reason) {
      socket.destroy();
      this.noteRefusal(address, reason);
      return false;
    }
    this.total += 1;
    this.byAddress.set(address, fromAddress + 1);
    // One listener for every socket ('close' comes once): no closure held per connection (docs/scale.md).
    socket.on('close', this.onClose);
    return true;
  }

  /**
   * `this` is the closed socket. Its address reads the same as at `admit`: a socket keeps the peer
   * address it was asked for once.
   */
  private readonly onClose = ((limits: ConnectionLimits) =>
    function onClose(this: Socket): void {
      limits.release(sourceAddress(this.remoteAddress));
    })(this);

  /** Open connections, in all or from one address. */
  open(address?: string): number {
    return address === undefined ? this.total : (this.byAddress.get(sourceAddress(address)) ?? 0);
  }

  /** Logs what is still untold and stops the log timer. */
  close(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.flush();
  }

  private release(address: string): void {
    this.total -= 1;
    const left = (this.byAddress.get(address) ?? 1) - 1;
    if (left > 0) this.byAddress.set(address, left);
    else this.byAddress.delete(address);
  }

  private noteRefusal(address: string, reason: Reason): void {
    this.refused[reason] += 1;
    const key = this.refusedFrom.has(address) || this.refusedFrom.size < TALLIED_ADDRESSES ? address : 'other';
    this.refusedFrom.set(key, (this.refusedFrom.get(key) ?? 0) + 1);
    if (this.now() >= this.nextLogAt) {
      this.flush();
      return;
    }
    // A burst that stops inside the interval is still told, once the interval ends.
    if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = undefined;
        this.flush();
      }, Math.max(0, this.nextLogAt - this.now()));
      this.flushTimer.unref();
    }
  }

  private flush(): void {
    const count = this.refused.perAddress + this.refused.total;
    if (count === 0) return;
    const top = [...this.refusedFrom].sort((a, b) => b[1] - a[1]).slice(0, 5);
    this.logger.warn(
      {
        listener: this.name,
        refused: count,
        overPerAddress: this.refused.perAddress,
        overTotal: this.refused.total,
        maxPerAddress: this.maxPerAddress,
        maxTotal: this.maxTotal,
        open: this.total,
        from: Object.fromEntries(top),
      },
      `${this.name}: refused ${count} connection(s) over the connection limits`,
    );
    this.refused = { perAddress: 0, total: 0 };
    this.refusedFrom.clear();
    this.nextLogAt = this.now() + this.interval;
  }
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, not ${value}`);
  return value;
}
