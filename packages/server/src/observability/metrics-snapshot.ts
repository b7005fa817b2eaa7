import type { IncomingMessage, ServerResponse } from 'node:http';
import { Errors, type SharedAccessPolicy } from '@opendps/model';
import { authenticateAdmin } from '../admin/auth';
import { sendJson } from '../admin/body';
import type { Route } from '../https';
import type { InstanceRegistry } from '../instances';
import type { ServerMetrics } from './metrics';
import type { HistogramValue, MetricsSnapshot, SeriesValue } from './metrics-snapshot-types';

/** The counters the snapshot carries; each has an `instance` label, so a snapshot shows one instance's. */
const COUNTERS = [
  'opendps_registration_attempts_total',
  'opendps_registration_attempts_by_protocol_total',
  'opendps_device_assignments_total',
  'opendps_registration_refusals_total',
  'opendps_attestation_attempts_total',
  'opendps_throttled_total',
] as const;

/** Node-wide series (no `instance` label): latency and open connections. */
const HISTOGRAMS = ['opendps_registration_duration_seconds'] as const;
const GAUGES = ['opendps_connections', 'opendps_operations_in_flight'] as const;

// The JSON types live in a file with no imports, so the console imports the same definitions.
export type { HistogramValue, MetricsSnapshot, SeriesValue };

export interface MetricsSnapshotOptions {
  metrics: ServerMetrics;
  host: string;
  adminPolicy: SharedAccessPolicy;
  registry: InstanceRegistry;
  /** Injected for tests; default Date.now. */
  now?: () => number;
}

const PATH = /^\/admin\/instances\/([^/]+)\/metrics\/?$/i;

/**
 * `GET /admin/instances/{name}/metrics`: this node's Prometheus counters of one instance, and the
 * node-wide latency histograms, as JSON for the console's live view. Signed like the admin API
 * (the admin key, or the instance's own policy with ServiceConfig; another instance is 404).
 * Mounted on the HTTPS listener ahead of the admin API, which claims the rest of `/admin`.
 */
export function metricsSnapshotRoute(options: MetricsSnapshotOptions): Route {
  const now = options.now ?? Date.now;
  const since = now();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const pathname = new URL(req.url ?? '/', 'https://metrics.invalid').pathname;
    const match = PATH.exec(pathname);
    if (!match) throw Errors.notFound();
    const caller = authenticateAdmin(header(req.headers.authorization), {
      host: options.host,
      adminPolicy: options.adminPolicy,
      instances: options.registry.instances(),
      pathname,
    });
    if (req.method !== 'GET') throw Errors.methodNotAllowed(`${req.method ?? ''} is not allowed on metrics; use GET.`);
    let name: string;
    try {
      name = decodeURIComponent(match[1] ?? '');
    } catch {
      throw Errors.invalidField('A path segment is not URL-encoded correctly.');
    }
    const instance = options.registry.instances().find((candidate) => candidate.name.toLowerCase() === name.toLowerCase());
    if (!instance || (caller.kind === 'instance' && caller.instance.name.toLowerCase() !== name.toLowerCase())) {
      throw Errors.instanceNotFound(`No provisioning instance '${name}'.`);
    }
    sendJson(res, 200, await snapshot(instance.name));
  }

  async function snapshot(instance: string): Promise<MetricsSnapshot> {
    const counters: Record<string, SeriesValue[]> = {};
    for (const name of COUNTERS) counters[name] = (await read(name)).filter((value) => value.labels.instance === instance).map(withoutInstance);
    const gauges: Record<string, SeriesValue[]> = {};
    for (const name of GAUGES) gauges[name] = await read(name);
    const histograms: Record<string, HistogramValue[]> = {};
    for (const name of HISTOGRAMS) histograms[name] = histogram(await read(name));
    return { instance, time: now(), since, counters, gauges, histograms };
  }

  async function read(name: string): Promise<SeriesValue[]> {
    const metric = options.metrics.registry.getSingleMetric(name);
    if (!metric) return [];
    const { values } = await metric.get();
    return values.map((value) => ({ labels: stringLabels(value.labels, (value as { metricName?: string }).metricName ?? name, name), value: value.value }));
  }

  return { matches: (pathname) => PATH.test(pathname), handle };
}

/** prom-client's flat `_bucket`/`_sum`/`_count` values, folded into one entry per label set. */
function histogram(values: SeriesValue[]): HistogramValue[] {
  const byKey = new Map<string, { labels: Record<string, string>; buckets: [number, number][]; count: number; sum: number }>();
  for (const { labels, value } of values) {
    const { __series: series, le, ...rest } = labels;
    const key = JSON.stringify(rest);
    let entry = byKey.get(key);
    if (!entry) byKey.set(key, (entry = { labels: rest, buckets: [], count: 0, sum: 0 }));
    if (series === 'sum') entry.sum = value;
    else if (series === 'count') entry.count = value;
    else if (le !== undefined && le !== '+Inf') entry.buckets.push([Number(le), value]);
  }
  return [...byKey.values()].map(({ labels, buckets, count, sum }) => {
    buckets.sort((a, b) => a[0] - b[0]);
    return { labels, le: buckets.map(([bound]) => bound), counts: buckets.map(([, n]) => n), count, sum };
  });
}

function stringLabels(labels: Record<string, string | number | undefined>, metricName: string, name: string): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(labels)) if (value !== undefined) result[key] = String(value);
  if (metricName !== name) result.__series = metricName.slice(name.length + 1);
  return result;
}

function withoutInstance({ labels, value }: SeriesValue): SeriesValue {
  const { instance: _instance, ...rest } = labels;
  return { labels: rest, value };
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
