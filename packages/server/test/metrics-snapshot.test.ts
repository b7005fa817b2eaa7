import { generateSymmetricKey } from '@opendps/model';
import type { RunningServer } from '../src';
import type { MetricsSnapshot } from '../src/observability/metrics-snapshot';
import { httpsCall, registerOverHttps, serviceSas, startAdminServer, type HttpsAnswer } from './admin-support';
import { tempDir } from './support';

/**
 * `GET /admin/instances/{name}/metrics` over real HTTPS (docs/observability.md "Metrics for the
 * console"): one instance's counters after real registrations, the latency buckets, and the
 * coded refusals of callers who may not read them.
 */
describe('metrics snapshot for the console', () => {
  const dir = tempDir();
  let server: RunningServer;
  let ca: string;
  let httpsPort: number;
  let admin: string;
  let owner: string;

  beforeAll(async () => {
    ({ server, ca, httpsPort, admin, owner } = await startAdminServer(dir.path));
  });
  afterAll(async () => {
    await server?.stop();
    dir.remove();
  });

  const call = (method: string, path: string, as?: string): Promise<HttpsAnswer> =>
    httpsCall({ port: httpsPort, ca, method, path, ...(as !== undefined ? { authorization: serviceSas(as) } : {}) });
  const snapshot = async (as: string, instance = 'default'): Promise<MetricsSnapshot> => {
    const answer = await call('GET', `/admin/instances/${instance}/metrics`, as);
    expect(answer.status).toBe(200);
    return answer.body as MetricsSnapshot;
  };
  const value = (snap: MetricsSnapshot, metric: string, labels: Record<string, string>): number =>
    (snap.counters[metric] ?? []).filter((series) => Object.entries(labels).every(([key, v]) => series.labels[key] === v)).reduce((sum, series) => sum + series.value, 0);

  it('counts registrations by hub, protocol and status, and keeps the latency buckets', async () => {
    const before = await snapshot(admin);
    expect(before.instance).toBe('default');
    const key = generateSymmetricKey();
    const enrolled = await httpsCall({
      port: httpsPort,
      ca,
      method: 'PUT',
      path: '/enrollments/counted-1?api-version=2021-10-01',
      authorization: serviceSas(owner),
      body: { registrationId: 'counted-1', attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: generateSymmetricKey() } } },
    });
    expect(enrolled.status).toBe(200);
    expect((await registerOverHttps(httpsPort, ca, server.connection.idScope, 'counted-1', key)).status).toBe(200);
    // A wrong key: refused, counted by reason.
    expect((await registerOverHttps(httpsPort, ca, server.connection.idScope, 'counted-1', generateSymmetricKey())).status).toBe(401);

    const after = await snapshot(owner);
    expect(after.time).toBeGreaterThanOrEqual(before.time);
    expect(after.since).toBe(before.since);
    const hub = server.connection.instances?.[0]?.linkedHubs[0]?.name ?? 'hub-1';
    expect(value(after, 'opendps_registration_attempts_total', { hub, status: 'assigned' }) - value(before, 'opendps_registration_attempts_total', { hub, status: 'assigned' })).toBe(1);
    expect(value(after, 'opendps_device_assignments_total', { hub }) - value(before, 'opendps_device_assignments_total', { hub })).toBe(1);
    const byProtocol = (snap: MetricsSnapshot, status: string) => value(snap, 'opendps_registration_attempts_by_protocol_total', { protocol: 'https', status });
    expect(byProtocol(after, 'assigned') - byProtocol(before, 'assigned')).toBe(1);
    expect(byProtocol(after, 'refused') - byProtocol(before, 'refused')).toBe(1);
    expect(value(after, 'opendps_registration_refusals_total', {}) - value(before, 'opendps_registration_refusals_total', {})).toBe(1);
    // The instance label is the URL's; it is not repeated on each series.
    expect(after.counters.opendps_registration_attempts_total?.every((series) => series.labels.instance === undefined)).toBe(true);

    const total = after.histograms.opendps_registration_duration_seconds?.find((h) => h.labels.protocol === 'https' && h.labels.phase === 'total');
    expect(total).toBeDefined();
    expect(total!.count).toBeGreaterThanOrEqual(2);
    expect(total!.le.length).toBe(total!.counts.length);
    expect(total!.le).toEqual([...total!.le].sort((a, b) => a - b));
    // Cumulative, as Prometheus keeps buckets: never decreasing, never above the count.
    expect(total!.counts.every((n, i) => n >= (total!.counts[i - 1] ?? 0) && n <= total!.count)).toBe(true);
    expect(total!.sum).toBeGreaterThan(0);
  });

  it('shows an instance only its own counters: another instance is 404 to its key, as the admin API does', async () => {
    const created = await call('POST', '/admin/instances', admin);
    expect(created.status).toBe(400); // no body: a coded refusal, not a crash
    const second = await httpsCall({ port: httpsPort, ca, method: 'POST', path: '/admin/instances', authorization: serviceSas(admin), body: { name: 'second' } });
    expect(second.status).toBe(201);
    const secondKey = (second.body as { serviceConnectionString: string }).serviceConnectionString;
    const own = await snapshot(secondKey, 'second');
    expect(value(own, 'opendps_registration_attempts_total', {})).toBe(0);
    const foreign = await call('GET', '/admin/instances/default/metrics', secondKey);
    expect(foreign.status).toBe(404);
    expect((foreign.body as { errorCode: number }).errorCode).toBe(404208);
    // The admin key reads either.
    expect((await snapshot(admin, 'second')).instance).toBe('second');
  });

  it('refuses unsigned callers, other methods and unknown instances with coded errors', async () => {
    const unsigned = await call('GET', '/admin/instances/default/metrics');
    expect(unsigned.status).toBe(401);
    expect((unsigned.body as { errorCode: number }).errorCode).toBeGreaterThanOrEqual(401000);
    const posted = await call('POST', '/admin/instances/default/metrics', admin);
    expect(posted.status).toBe(405);
    expect((posted.body as { errorCode: number }).errorCode).toBe(405001);
    const missing = await call('GET', '/admin/instances/nowhere/metrics', admin);
    expect(missing.status).toBe(404);
    expect((missing.body as { errorCode: number }).errorCode).toBe(404208);
    const badEscape = await call('GET', '/admin/instances/%E0%A4%A/metrics', admin);
    expect(badEscape.status).toBe(400);
  });
});
