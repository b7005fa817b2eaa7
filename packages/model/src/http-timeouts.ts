/**
 * How slowly an HTTP client may send a request, on every HTTP-speaking listener (the HTTPS
 * listener, WebSocket upgrades, the built-in hub's REST API). A connection that misses a deadline
 * is answered 408 and closed; once a request has arrived, its handling and an upgraded WebSocket
 * are not bounded by these.
 */
export interface HttpTimeouts {
  /** The request line and headers must have arrived this long after the request began (default 15 s). */
  headersTimeoutMs?: number;
  /** The whole request, body included (default 30 s; at least the headers timeout). */
  requestTimeoutMs?: number;
  /**
   * How often the deadlines are checked (default 1 s). Node checks every 30 s unless told, which let
   * a client trickling header lines stay up to 30 s past its deadline.
   */
  checkIntervalMs?: number;
}

export const DEFAULT_HTTP_TIMEOUTS: Readonly<Required<HttpTimeouts>> = {
  headersTimeoutMs: 15_000,
  requestTimeoutMs: 30_000,
  checkIntervalMs: 1_000,
};

/** The `http.createServer` options enforcing these bounds. */
export function httpServerTimeouts(timeouts: HttpTimeouts = {}): {
  headersTimeout: number;
  requestTimeout: number;
  connectionsCheckingInterval: number;
} {
  const headersTimeout = positive(timeouts.headersTimeoutMs ?? DEFAULT_HTTP_TIMEOUTS.headersTimeoutMs, 'headersTimeoutMs');
  const requestTimeout = positive(timeouts.requestTimeoutMs ?? Math.max(DEFAULT_HTTP_TIMEOUTS.requestTimeoutMs, headersTimeout), 'requestTimeoutMs');
  if (headersTimeout > requestTimeout) {
    throw new RangeError(`headersTimeoutMs (${headersTimeout}) must not exceed requestTimeoutMs (${requestTimeout}).`);
  }
  const connectionsCheckingInterval = positive(timeouts.checkIntervalMs ?? DEFAULT_HTTP_TIMEOUTS.checkIntervalMs, 'checkIntervalMs');
  return { headersTimeout, requestTimeout, connectionsCheckingInterval };
}

// Node reads 0 as "never": a bound must be a real one.
function positive(value: number, name: string): number {
  if (!Number.isInteger(value) || value <= 0) throw new RangeError(`${name} must be a whole number of milliseconds above 0; got ${value}.`);
  return value;
}
