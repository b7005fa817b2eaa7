import { useEffect, useRef, useState } from 'preact/hooks';
import { BarChart } from '../charts/bar-chart';
import { LineChart, type Line } from '../charts/line-chart';
import {
  ASSIGNMENTS,
  bucketDelta,
  latencyBuckets,
  quantile,
  ratesBy,
  REGISTRATIONS,
  REGISTRATIONS_BY_PROTOCOL,
  totalsBy,
  type MetricsSnapshot,
} from '../charts/metrics';
import { ErrorBanner } from '../components/error-banner';
import { useSession } from '../session';

/** How often the page reads the metrics while it is open. */
const POLL_MS = 2000;
/** Points kept per line: two minutes. */
const SLOTS = 60;
/** Percentiles are taken over the registrations of the last few readings (10 s), so a quiet second is not a gap. */
const LATENCY_WINDOW = 5;
const STATUSES = ['assigned', 'failed', 'disabled', 'refused'];
const PERCENTILES: [string, number][] = [
  ['p50', 0.5],
  ['p90', 0.9],
  ['p99', 0.99],
];

interface Point {
  byStatus: Map<string, number>;
  byProtocol: Map<string, number>;
  byHub: Map<string, number>;
  latency: Map<string, number | undefined>;
}

/** What the page drew last, kept while the console is open so that coming back shows the recent past. */
let memory: { name: string; kept: MetricsSnapshot[]; points: Point[] } | undefined;

/**
 * Live view: this node's counters for the current instance, read every 2 s
 * (`GET /admin/instances/{name}/metrics`), drawn as rates and latency percentiles.
 */
export function LivePage() {
  const api = useSession();
  const name = api.session.instance.name;
  const remembered = memory?.name === name ? memory : undefined;
  const [readings, setReadings] = useState<MetricsSnapshot[]>(remembered?.kept ?? []);
  const [points, setPoints] = useState<Point[]>(remembered?.points ?? []);
  const [error, setError] = useState<unknown>();
  const apiRef = useRef(api);
  apiRef.current = api;

  useEffect(() => {
    let stopped = false;
    let busy = false;
    let kept: MetricsSnapshot[] = memory?.name === name ? memory.kept : [];
    let drawn: Point[] = memory?.name === name ? memory.points : [];
    const read = async () => {
      if (busy || stopped) return;
      busy = true;
      try {
        const { body } = await apiRef.current.admin<MetricsSnapshot>('GET', `/admin/instances/${encodeURIComponent(name)}/metrics`);
        if (stopped) return;
        let previous = kept[kept.length - 1];
        // After the page was closed a while, a rate over the whole absence would mislead: start over.
        if (previous && body.time - previous.time > 3 * POLL_MS) {
          kept = [];
          previous = undefined;
        }
        kept = [...kept, body].slice(-(LATENCY_WINDOW + 1));
        if (previous) drawn = [...drawn, point(kept, previous, body)].slice(-SLOTS);
        memory = { name, kept, points: drawn };
        setReadings(kept);
        setPoints(drawn);
        setError(undefined);
      } catch (caught) {
        if (!stopped) setError(caught);
      } finally {
        busy = false;
      }
    };
    void read();
    const timer = setInterval(() => void read(), POLL_MS);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [name]);

  const latest = readings[readings.length - 1];
  const current = points[points.length - 1];
  const statusLines = lines(points, (p) => p.byStatus, STATUSES);
  const protocolLines = lines(points, (p) => p.byProtocol, []);
  const latencyLines: Line[] = PERCENTILES.map(([label]) => ({ name: label, values: points.map((p) => toMs(p.latency.get(label))) }));
  const hubs = latest ? [...totalsBy(latest, ASSIGNMENTS, 'hub')].sort((a, b) => b[1] - a[1]) : [];
  const rate = (value: number) => value.toFixed(value >= 10 ? 0 : 2);
  const ms = (value: number) => value.toFixed(value >= 100 ? 0 : 1);

  return (
    <section class="live">
      <h1>Live view</h1>
      <p class="hint">
        Instance <strong>{name}</strong> as counted by the node that answers, read every {POLL_MS / 1000} s. Latency is the node's, across
        instances.
      </p>
      <ErrorBanner error={error} />
      {!latest ? <p class="loading">Reading the metrics…</p> : null}
      {latest && !current ? <p class="loading">Waiting for a second reading to compute rates…</p> : null}
      <div class="charts">
        <LineChart title="Registrations per second by status" lines={statusLines} slots={SLOTS} format={rate} unit="/s" />
        <LineChart title="Registrations per second by protocol" lines={protocolLines} slots={SLOTS} format={rate} unit="/s" />
        <BarChart
          title="Assignments by hub (since the node started)"
          bars={hubs.map(([hub, total]) => ({ name: hub, value: total, note: current ? `${rate(current.byHub.get(hub) ?? 0)}/s` : undefined }))}
          empty="No device assigned yet."
        />
        <LineChart title="Registration latency (last 10 s)" lines={latencyLines} slots={SLOTS} format={ms} unit="ms" />
      </div>
      {latest ? (
        <>
          <h2 id="live-now">Now</h2>
          <div class="table-wrap">
            <table aria-labelledby="live-now" class="live-table">
              <thead>
                <tr>
                  <th scope="col">Measure</th>
                  <th scope="col">Per second</th>
                  <th scope="col">Total</th>
                </tr>
              </thead>
              <tbody>
                {rows(latest, current).map((row) => (
                  <tr key={row.measure} data-measure={row.measure}>
                    <th scope="row">{row.measure}</th>
                    <td>{row.rate === undefined ? '—' : rate(row.rate)}</td>
                    <td>{row.total === undefined ? '—' : row.total}</td>
                  </tr>
                ))}
                {PERCENTILES.map(([label]) => {
                  const value = toMs(current?.latency.get(label));
                  return (
                    <tr key={label} data-measure={`latency ${label}`}>
                      <th scope="row">Latency {label}</th>
                      <td colSpan={2}>{value === undefined ? '—' : `${ms(value)} ms`}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        </>
      ) : null}
    </section>
  );
}

function point(kept: MetricsSnapshot[], previous: MetricsSnapshot, current: MetricsSnapshot): Point {
  const window = bucketDelta(latencyBuckets(kept[0]!), latencyBuckets(current));
  return {
    byStatus: ratesBy(previous, current, REGISTRATIONS, 'status'),
    byProtocol: ratesBy(previous, current, REGISTRATIONS_BY_PROTOCOL, 'protocol'),
    byHub: ratesBy(previous, current, ASSIGNMENTS, 'hub'),
    latency: new Map(PERCENTILES.map(([label, q]) => [label, quantile(q, window)])),
  };
}

/** One line per label value seen in any point (the `always` ones even at zero), zero where a point lacks it. */
function lines(points: Point[], pick: (point: Point) => Map<string, number>, always: string[]): Line[] {
  const names = new Set(always);
  for (const p of points) for (const key of pick(p).keys()) names.add(key);
  return [...names].map((name) => ({ name: name || '(none)', values: points.map((p) => pick(p).get(name) ?? 0) }));
}

function rows(latest: MetricsSnapshot, current: Point | undefined): { measure: string; rate?: number; total?: number }[] {
  const result: { measure: string; rate?: number; total?: number }[] = [];
  const totals = totalsBy(latest, REGISTRATIONS, 'status');
  let all = 0;
  for (const value of totals.values()) all += value;
  let allRate: number | undefined;
  if (current) allRate = [...current.byStatus.values()].reduce((sum, value) => sum + value, 0);
  result.push({ measure: 'Registrations', rate: allRate, total: all });
  for (const status of new Set([...STATUSES, ...totals.keys()])) result.push({ measure: `Registrations ${status}`, rate: current?.byStatus.get(status) ?? (current ? 0 : undefined), total: totals.get(status) ?? 0 });
  for (const [protocol, total] of totalsBy(latest, REGISTRATIONS_BY_PROTOCOL, 'protocol')) {
    result.push({ measure: `Registrations over ${protocol}`, rate: current?.byProtocol.get(protocol) ?? (current ? 0 : undefined), total });
  }
  for (const [hub, total] of totalsBy(latest, ASSIGNMENTS, 'hub')) result.push({ measure: `Assigned to ${hub}`, rate: current?.byHub.get(hub), total });
  return result;
}

function toMs(seconds: number | undefined): number | undefined {
  return seconds === undefined ? undefined : seconds * 1000;
}
