import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Store } from '@opendps/store';
import type { Route } from '../https';
import type { Listener } from '../lifecycle';
import type { ServerMetrics } from './metrics';

/**
 * `/healthz` (the process answers) and `/readyz` (take traffic: every listener is up, the store
 * answers, and the node is not draining), served on the HTTPS listener for load balancers and on
 * the metrics port for the container health check (docs/observability.md "Health").
 */
export interface Readiness {
  /** Set when every listener is up; cleared when the server stops. */
  setListening(listening: boolean): void;
  /** A draining node answers `/readyz` 503 so load balancers send new devices elsewhere. */
  setDraining(draining: boolean): void;
  readonly draining: boolean;
  check(): Promise<ReadinessReport>;
}

export interface ReadinessReport {
  ready: boolean;
  checks: { listeners: boolean; store: boolean; draining: boolean };
}

export interface ReadinessOptions {
  store: Store;
  /** A store that has not answered by then counts as unreachable (default 1000 ms). */
  storeTimeoutMs?: number;
}

export function createReadiness(options: ReadinessOptions): Readiness {
  let listening = false;
  let draining = false;
  const timeoutMs = options.storeTimeoutMs ?? 1000;
  const probe = options.store.collection<never>('global', 'health');

  async function storeAnswers(): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
      timer.unref();
    });
    try {
      return await Promise.race([probe.get('probe').then(() => true, () => false), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    setListening: (value) => {
      listening = value;
    },
    setDraining: (value) => {
      draining = value;
    },
    get draining() {
      return draining;
    },
    async check() {
      const store = await storeAnswers();
      const checks = { listeners: listening, store, draining };
      return { ready: listening && store && !draining, checks };
    },
  };
}

/** Answers `/healthz` and `/readyz`; false when the path is neither. */
export async function answerHealth(pathname: string, readiness: Readiness, res: ServerResponse): Promise<boolean> {
  if (pathname === '/healthz') {
    send(res, 200, { status: 'ok' });
    return true;
  }
  if (pathname === '/readyz') {
    const report = await readiness.check();
    send(res, report.ready ? 200 : 503, { status: report.ready ? 'ready' : 'unready', checks: report.checks });
    return true;
  }
  return false;
}

/** The health paths on the HTTPS listener, ahead of every other route; no authentication (nothing secret). */
export function healthRoute(readiness: Readiness): Route {
  return {
    matches: (pathname) => pathname === '/healthz' || pathname === '/readyz',
    handle: async (req, res) => {
      await answerHealth(pathOf(req), readiness, res);
    },
  };
}

export interface MetricsListenerOptions {
  port: number;
  bind: string;
  metrics: ServerMetrics;
  readiness: Readiness;
}

/**
 * The metrics port: plain HTTP (Prometheus scrapes it, on loopback unless `--metrics-bind` says
 * otherwise), `/metrics` plus the health paths. Registered as the listener `metrics`.
 */
export function createMetricsListener(options: MetricsListenerOptions): Listener {
  const server = createServer((req, res) => {
    void handle(req, res).catch(() => {
      if (!res.headersSent) send(res, 500, { status: 'error' });
      else res.destroy();
    });
  });
  // A scraper holds its connection open between scrapes; a silent client must not hold one forever.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const pathname = pathOf(req);
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { status: 'method not allowed' });
    if (pathname === '/metrics') {
      const text = await options.metrics.registry.metrics();
      res.writeHead(200, { 'content-type': options.metrics.registry.contentType, 'content-length': Buffer.byteLength(text) });
      res.end(req.method === 'HEAD' ? undefined : text);
      return;
    }
    if (!(await answerHealth(pathname, options.readiness, res))) send(res, 404, { status: 'not found' });
  }

  return {
    name: 'metrics',
    start: () =>
      new Promise<number>((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.port, options.bind, () => {
          server.off('error', reject);
          resolve((server.address() as AddressInfo).port);
        });
      }),
    stop: () =>
      new Promise<void>((resolve) => {
        if (!server.listening) return resolve();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

function pathOf(req: IncomingMessage): string {
  const raw = req.url ?? '/';
  const query = raw.indexOf('?');
  return query === -1 ? raw : raw.slice(0, query);
}
