/**
 * Operating OpenDPS (issue #11, docs/observability.md): Prometheus metrics after real registrations
 * (the unmodified Azure SDK over MQTT and HTTPS, refusals by reason, a throttled 429), `/healthz`
 * and `/readyz` on the HTTPS listener and the metrics port (unready while draining or when Redis is
 * gone), the registration trace through the admin API and the CLI, and log hygiene.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, get as httpGet, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request as httpsRequest } from 'node:https';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { generateSymmetricKey, parseConnectionString } from '@opendps/model';
import { createLogger, createServer, type RunningServer } from '@opendps/server';
import { enrollments } from '@opendps/store';
import { main } from '../packages/server/src/cli/main';
import { callServiceApi } from '../packages/server/src/cli/service-client';
import { deviceSas, httpsRegister, mqttRegister, portOf, registerWithSdk, type DpsEndpoints } from './support/devices';
import { startRedis } from './support/redis-server';

interface Answer {
  status: number;
  body: string;
}

function fetchText(url: string, ca?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const onResponse = (res: import('node:http').IncomingMessage) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    };
    const req = url.startsWith('https:') ? httpsRequest(url, { ca }, onResponse) : httpGet(url, onResponse);
    req.on('error', reject);
    req.end();
  });
}

/** The value of one sample line (`name{labels} value`), 0 when absent. */
function sample(metrics: string, name: string, labels: Record<string, string>): number {
  const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`);
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(`${name}{`) && line !== name && !line.startsWith(`${name} `)) continue;
    const braces = /\{(.*)\}/.exec(line)?.[1] ?? '';
    const have = braces.split(/,(?=[a-z_]+=")/);
    if (wanted.every((pair) => have.includes(pair))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

/** Keys that appear twice in one JSON object of `text` (JSON.parse would silently keep the last). */
function duplicateKeys(text: string): string[] {
  const duplicates: string[] = [];
  const stack: Array<Set<string> | null> = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (char === '"') {
      let j = i + 1;
      let key = '';
      while (j < text.length && text[j] !== '"') {
        key += text[j] === '\\' ? text[j] + (text[++j] ?? '') : text[j];
        j++;
      }
      const top = stack[stack.length - 1];
      if (expectKey && top) {
        if (top.has(key)) duplicates.push(key);
        top.add(key);
        expectKey = false;
      }
      i = j;
    } else if (char === '{') {
      stack.push(new Set());
      expectKey = true;
    } else if (char === '[') {
      stack.push(null);
    } else if (char === '}' || char === ']') {
      stack.pop();
    } else if (char === ',') {
      expectKey = Boolean(stack[stack.length - 1]);
    }
  }
  return duplicates;
}

function lineSink(): { stream: Writable; lines: string[] } {
  const lines: string[] = [];
  let partial = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      const parts = (partial + chunk.toString('utf8')).split('\n');
      partial = parts.pop() ?? '';
      lines.push(...parts.filter(Boolean));
      callback();
    },
  });
  return { stream, lines };
}

function captureIo(cwd: string) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (text: string) => stdout.push(text), err: (text: string) => stderr.push(text), env: {}, cwd };
}

describe('metrics, health, traces and logs of a running server (SQLite)', () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'opendps-observe-'));
  const log = lineSink();
  const fixed = Date.now();
  let server: RunningServer;
  let endpoints: DpsEndpoints;
  let idScope: string;
  let metricsUrl: string;
  let ca: string;
  const keys = { mqtt: generateSymmetricKey(), http: generateSymmetricKey(), wrong: generateSymmetricKey(), hook: generateSymmetricKey() };
  /** A custom allocation webhook on loopback that always picks hub-1. */
  let webhook: Server;

  beforeAll(async () => {
    webhook = createHttpServer((req, res) => {
      req.resume();
      req.on('end', () => res.end(JSON.stringify({ iotHubHostName: 'hub-1' })));
    });
    await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
    server = await createServer({
      dataDir,
      ports: { https: 0, mqtt: 0, amqp: 0, hub: 0 },
      metrics: { port: 0 },
      logger: createLogger({ destination: log.stream, level: 'debug' }),
      // One quota window for the whole suite, so the throttled answer below is certain.
      clock: { now: () => fixed },
      timeouts: { answerWithinMs: 20_000 },
      instanceRefreshMs: 100,
    });
    ca = readFileSync(server.caFile, 'utf8');
    idScope = server.connection.idScope;
    endpoints = { mqttPort: portOf(server.endpoints.mqtt), httpsPort: portOf(server.endpoints.https), ca };
    metricsUrl = `http://${server.endpoints.metrics ?? ''}`;
    for (const [registrationId, key] of [['dev-mqtt', keys.mqtt], ['dev-http', keys.http], ['dev-wrong', generateSymmetricKey()], ['dev-hook', keys.hook]] as const) {
      await enrollments(server.store, idScope).put({
        registrationId,
        attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: generateSymmetricKey() } },
        ...(registrationId === 'dev-hook'
          ? {
              allocationPolicy: 'custom' as const,
              customAllocationDefinition: { webhookUrl: `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/allocate`, apiVersion: '2019-03-31' },
            }
          : {}),
      });
    }
  });

  afterAll(async () => {
    await server?.stop();
    await new Promise((resolve) => webhook.close(resolve));
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('connection.json lists the metrics port, on loopback', () => {
    const written = JSON.parse(readFileSync(server.connectionFile, 'utf8'));
    expect(written.endpoints.metrics).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(written.endpoints.metrics).toBe(server.endpoints.metrics);
  });

  test('registrations over MQTT and HTTPS, refusals by reason and a 429 are counted with their labels', async () => {
    const mqtt = await registerWithSdk('mqtt', endpoints, idScope, { kind: 'symmetricKey', registrationId: 'dev-mqtt', key: keys.mqtt });
    const http = await registerWithSdk('http', endpoints, idScope, { kind: 'symmetricKey', registrationId: 'dev-http', key: keys.http });
    expect(mqtt.assignedHub).toBe(server.endpoints.hubs[0]);
    expect(http.assignedHub).toBe(server.endpoints.hubs[0]);
    const hooked = await mqttRegister({ port: endpoints.mqttPort, ca, idScope, registrationId: 'dev-hook', password: deviceSas(idScope, 'dev-hook', keys.hook) });
    expect(hooked.body).toMatchObject({ status: 'assigned' });
    // A wrong key over HTTPS and an unknown registration id over MQTT: both 401 to the device.
    const wrong = await httpsRegister(endpoints, idScope, 'dev-wrong', { authorization: deviceSas(idScope, 'dev-wrong', keys.wrong) });
    expect(wrong.status).toBe(401);
    const unknown = await mqttRegister({
      port: endpoints.mqttPort,
      ca,
      idScope,
      registrationId: 'nobody',
      password: deviceSas(idScope, 'nobody', keys.wrong),
    });
    expect(unknown.status).toBe(401);
    expect(JSON.stringify(unknown.body)).not.toMatch(/unknownEnrollment|wrongKey/);

    // The quota window never moves (fixed clock): at 1 registration/s the next one is over it.
    const admin = parseConnectionString(server.connection.adminConnectionString);
    await callServiceApi(
      { hostName: admin.HostName ?? '', keyName: admin.SharedAccessKeyName ?? '', key: admin.SharedAccessKey ?? '', host: 'localhost', port: endpoints.httpsPort, ca },
      'PATCH',
      '/admin/instances/default',
      { body: { quotas: { registrationsPerSecond: 1 } } },
    );
    const throttled = await httpsRegister(endpoints, idScope, 'dev-http', { authorization: deviceSas(idScope, 'dev-http', keys.http) });
    expect(throttled.status).toBe(429);

    const { status, body: text } = await fetchText(`${metricsUrl}/metrics`);
    expect(status).toBe(200);
    const hub = 'hub-1';
    expect(sample(text, 'opendps_attestation_attempts_total', { instance: 'default', protocol: 'mqtt', mechanism: 'symmetricKey', status: 'success' })).toBe(2);
    expect(sample(text, 'opendps_attestation_attempts_total', { instance: 'default', protocol: 'https', mechanism: 'symmetricKey', status: 'success' })).toBe(1);
    expect(sample(text, 'opendps_attestation_attempts_total', { instance: 'default', protocol: 'https', mechanism: 'symmetricKey', status: 'failure' })).toBe(1);
    expect(sample(text, 'opendps_attestation_attempts_total', { instance: 'default', protocol: 'mqtt', mechanism: 'symmetricKey', status: 'failure' })).toBe(1);
    expect(sample(text, 'opendps_registration_attempts_total', { instance: 'default', hub, status: 'assigned' })).toBe(3);
    expect(sample(text, 'opendps_registration_attempts_total', { instance: 'default', hub: '', status: 'refused' })).toBe(3);
    expect(sample(text, 'opendps_device_assignments_total', { instance: 'default', hub })).toBe(3);
    expect(sample(text, 'opendps_registration_refusals_total', { instance: 'default', reason: 'wrongKey' })).toBe(1);
    expect(sample(text, 'opendps_registration_refusals_total', { instance: 'default', reason: 'unknownEnrollment' })).toBe(1);
    expect(sample(text, 'opendps_registration_refusals_total', { instance: 'default', reason: 'throttled' })).toBe(1);
    expect(sample(text, 'opendps_throttled_total', { instance: 'default', request: 'register' })).toBe(1);
    expect(sample(text, 'opendps_registration_duration_seconds_count', { protocol: 'mqtt', phase: 'assign' })).toBe(2);
    expect(sample(text, 'opendps_registration_duration_seconds_count', { protocol: 'https', phase: 'attest' })).toBe(1);
    expect(sample(text, 'opendps_registration_duration_seconds_count', { protocol: 'mqtt', phase: 'total' })).toBe(3);
    expect(sample(text, 'opendps_store_duration_seconds_count', { operation: 'put' })).toBeGreaterThan(0);
    expect(sample(text, 'opendps_operations_in_flight', {})).toBe(0);
    expect(text).toMatch(/^opendps_connections\{protocol="https"\} \d+$/m);
    expect(text).toMatch(/^opendps_connections\{protocol="mqtt"\} \d+$/m);
    expect(sample(text, 'opendps_webhook_duration_seconds_count', { result: 'ok' })).toBe(1);
    expect(text).toMatch(/^opendps_process_cpu_user_seconds_total \d/m);

    // The shipped Grafana dashboard only queries metrics this server exports.
    const dashboard = readFileSync(path.join(__dirname, '../docker/grafana/opendps-dashboard.json'), 'utf8');
    const queried = new Set([...dashboard.matchAll(/\b(opendps_[a-z0-9_]+)/g)].map((match) => match[1] as string));
    expect(queried.size).toBeGreaterThan(10);
    for (const name of queried) expect({ name, exported: new RegExp(`^# TYPE ${name.replace(/_(bucket|count|sum)$/, '')} `, 'm').test(text) }).toEqual({ name, exported: true });
  });

  test('the traces are readable through the admin API and `opendps registration show|delete`', async () => {
    const admin = parseConnectionString(server.connection.adminConnectionString);
    const target = { hostName: admin.HostName ?? '', keyName: admin.SharedAccessKeyName ?? '', key: admin.SharedAccessKey ?? '', host: 'localhost', port: endpoints.httpsPort, ca };
    const wrong = await callServiceApi(target, 'GET', '/admin/instances/default/registrations/dev-wrong/trace');
    expect(wrong.body).toMatchObject({ outcome: 'refused', reason: 'wrongKey', errorCode: 401002, transport: 'https', registrationId: 'dev-wrong' });
    expect((wrong.body as { time: string }).time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

    const io = captureIo(dataDir);
    expect(await main(['registration', 'show', 'dev-mqtt', '--data-dir', dataDir], io)).toBe(0);
    const shown = JSON.parse(io.stdout.join(''));
    expect(shown.registrationState).toMatchObject({ registrationId: 'dev-mqtt', status: 'assigned' });
    expect(shown.trace).toMatchObject({
      outcome: 'assigned',
      transport: 'mqtt',
      assignment: { policy: 'hashed', chosen: { name: 'hub-1' }, why: { rule: 'hashed', weights: { 'hub-1': 1 } }, reprovision: { action: 'initial' } },
    });

    const deleted = captureIo(dataDir);
    expect(await main(['registration', 'delete', 'dev-mqtt', '--data-dir', dataDir], deleted)).toBe(0);
    expect(deleted.stdout.join('')).toMatch(/record and trace/);
    const gone = captureIo(dataDir);
    expect(await main(['registration', 'show', 'dev-mqtt', '--data-dir', dataDir], gone)).toBe(1);
    expect(gone.stderr.join('')).toMatch(/No registration record or trace for 'dev-mqtt'/);
  });

  test('/healthz and /readyz on the HTTPS listener and the metrics port; a draining node is unready', async () => {
    const httpsBase = `https://localhost:${endpoints.httpsPort}`;
    for (const base of [httpsBase, metricsUrl]) {
      expect(await fetchText(`${base}/healthz`, ca)).toEqual({ status: 200, body: '{"status":"ok"}' });
      const ready = await fetchText(`${base}/readyz`, ca);
      expect(ready.status).toBe(200);
      expect(JSON.parse(ready.body)).toEqual({ status: 'ready', checks: { listeners: true, store: true, draining: false } });
    }
    server.setDraining(true);
    try {
      for (const base of [httpsBase, metricsUrl]) {
        const draining = await fetchText(`${base}/readyz`, ca);
        expect(draining.status).toBe(503);
        expect(JSON.parse(draining.body)).toMatchObject({ status: 'unready', checks: { draining: true } });
        expect((await fetchText(`${base}/healthz`, ca)).status).toBe(200);
      }
    } finally {
      server.setDraining(false);
    }
    expect((await fetchText(`${metricsUrl}/readyz`)).status).toBe(200);
    expect((await fetchText(`${metricsUrl}/nothing`)).status).toBe(404);
  });

  test('log lines: JSON, ISO-8601 time, no repeated key, one line per registration outcome (assignments at debug)', () => {
    expect(log.lines.length).toBeGreaterThan(5);
    for (const line of log.lines) {
      const parsed = JSON.parse(line) as { time?: unknown };
      expect(parsed.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect({ line, duplicates: duplicateKeys(line) }).toEqual({ line, duplicates: [] });
    }
    const parsed = log.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    const info = parsed.filter((line) => line.level === 30);
    const outcomes = parsed.filter((line) => typeof line.msg === 'string' && line.msg.startsWith('registration '));
    for (const registrationId of ['dev-mqtt', 'dev-wrong', 'nobody', 'dev-hook']) {
      const about = outcomes.filter((line) => line.registrationId === registrationId);
      expect({ registrationId, lines: about.length }).toEqual({ registrationId, lines: 1 });
    }
    // The default level (info) writes nothing for a healthy registration: its line is a debug line.
    for (const registrationId of ['dev-mqtt', 'dev-hook']) {
      expect(info.filter((line) => line.registrationId === registrationId)).toEqual([]);
      expect(outcomes.find((line) => line.registrationId === registrationId)).toMatchObject({ level: 20, msg: 'registration assigned', outcome: 'assigned' });
    }
    expect(info.find((line) => line.registrationId === 'dev-wrong')).toMatchObject({ msg: 'registration refused', reason: 'wrongKey', category: 'DeviceOperations' });
    expect(info.find((line) => line.registrationId === 'nobody')).toMatchObject({ reason: 'unknownEnrollment', transport: 'mqtt' });
    expect(outcomes.find((line) => line.registrationId === 'dev-hook')).toMatchObject({
      outcome: 'assigned',
      assignment: { policy: 'custom', why: { rule: 'webhook', iotHubHostName: server.endpoints.hubs[0] } },
    });
    expect(outcomes.filter((line) => line.registrationId === 'dev-http').map((line) => `${String(line.level)} ${String(line.reason ?? line.outcome)}`)).toEqual([
      '20 assigned',
      '30 throttled',
    ]);
  });
});

describe('readiness follows the store (Redis)', () => {
  test('/readyz is 503 while redis-server is down, and 200 again once it is back', async () => {
    const redis = await startRedis();
    const dataDir = mkdtempSync(path.join(tmpdir(), 'opendps-observe-redis-'));
    let server: RunningServer | undefined;
    try {
      server = await createServer({
        dataDir,
        redisUrl: redis.url,
        ports: { https: 0, mqtt: 0, amqp: 0, hub: 0 },
        metrics: { port: 0 },
        logger: createLogger({ destination: lineSink().stream }),
        timeouts: { readinessStoreTimeoutMs: 300 },
      });
      const readyz = `http://${server.endpoints.metrics ?? ''}/readyz`;
      expect((await fetchText(readyz)).status).toBe(200);
      redis.kill();
      const down = await fetchText(readyz);
      expect(down.status).toBe(503);
      expect(JSON.parse(down.body)).toEqual({ status: 'unready', checks: { listeners: true, store: false, draining: false } });
      expect((await fetchText(readyz.replace('/readyz', '/healthz'))).status).toBe(200);
      await redis.restart();
      // ioredis reconnects on its own schedule: wait for the state, bounded, not for a time.
      let status = 0;
      for (let attempt = 0; attempt < 60 && status !== 200; attempt++) {
        status = (await fetchText(readyz)).status;
        if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 250));
      }
      expect(status).toBe(200);
    } finally {
      await server?.stop();
      await redis.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
