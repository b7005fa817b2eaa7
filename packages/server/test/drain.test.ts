import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:tls';
import { generateSymmetricKey } from '@opendps/model';
import { createServer } from '../src';
import { createLogger } from '../src/logger';
import { deviceSas, httpsCall, portOf, serviceSas } from './admin-support';
import { lineSink, startCliServer, tempDir } from './support';

/** A custom allocation webhook that never answers: a registration stays in flight as long as we like. */
async function silentWebhook(): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createHttpServer(() => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/allocate`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function enrollStuckDevice(https: string, ca: string, serviceConnectionString: string, webhookUrl: string): Promise<string> {
  const key = generateSymmetricKey();
  const enrolled = await httpsCall({
    port: portOf(https),
    ca,
    method: 'PUT',
    path: '/enrollments/stuck?api-version=2021-10-01',
    authorization: serviceSas(serviceConnectionString),
    body: {
      registrationId: 'stuck',
      attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: key } },
      allocationPolicy: 'custom',
      customAllocationDefinition: { webhookUrl, apiVersion: '2021-10-01' },
    },
  });
  expect(enrolled.status).toBe(200);
  return key;
}

describe('graceful drain', () => {
  it('opendps start: SIGINT with a registration stuck in flight still exits 0 within --drain-timeout-ms, logging the drain start and end with counts', async () => {
    const dir = tempDir();
    const webhook = await silentWebhook();
    try {
      const server = await startCliServer(dir.path, ['--drain-timeout-ms', '1000', '--webhook-timeout-ms', '60000'], { OPENDPS_ANSWER_WITHIN_MS: '0' });
      const { connection } = server;
      const ca = readFileSync(connection.caFile, 'utf8');
      const key = await enrollStuckDevice(connection.endpoints.https, ca, connection.serviceConnectionString, webhook.url);
      const registered = await httpsCall({
        port: portOf(connection.endpoints.https),
        ca,
        method: 'PUT',
        path: `/${connection.idScope}/registrations/stuck/register?api-version=2021-06-01`,
        authorization: deviceSas(connection.idScope, 'stuck', key),
        body: { registrationId: 'stuck' },
      });
      expect(registered.status).toBe(202);

      const started = performance.now();
      server.child.kill('SIGINT');
      const code = await new Promise<number | null>((resolve) => server.child.once('exit', (exitCode) => resolve(exitCode)));
      const elapsed = performance.now() - started;
      expect(code).toBe(0);
      expect(elapsed).toBeLessThan(2_000);
      expect(server.stderr()).toBe('');
      const drain = server
        .stdout()
        .split('\n')
        .filter((line) => /"msg":"drain/.test(line))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(drain).toEqual([
        expect.objectContaining({ inFlight: 1, timeoutMs: 1000, msg: 'draining: no new connections; finishing in-flight registrations' }),
        expect.objectContaining({ inFlight: 1, left: 1, msg: 'drained; unfinished registrations stay leased in the store for another node' }),
      ]);
    } finally {
      await webhook.close();
      dir.remove();
    }
  }, 30_000);

  it('drain(): readiness flips at once, listeners refuse new connections, open device connections are ended (FIN, not reset)', async () => {
    const dir = tempDir();
    const sink = lineSink();
    try {
      const server = await createServer({ dataDir: dir.path, ports: { https: 0, mqtt: 0, amqp: 0, hub: 0 }, logger: createLogger({ destination: sink.stream }), drainTimeoutMs: 1000 });
      const ca = readFileSync(server.caFile, 'utf8');
      const mqttPort = portOf(server.endpoints.mqtt ?? '');
      // An MQTT connection that has finished TLS (and not yet sent CONNECT).
      const socket = await new Promise<ReturnType<typeof connect>>((resolve, reject) => {
        const opened = connect({ host: '127.0.0.1', port: mqttPort, ca, servername: 'localhost' }, () => resolve(opened));
        opened.on('error', reject);
      });
      const ended = new Promise<string>((resolve) => {
        socket.on('end', () => resolve('end'));
        socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
      });
      expect(server.draining).toBe(false);
      const drained = server.drain();
      expect(server.draining).toBe(true);
      expect(await ended).toBe('end');
      const report = await drained;
      expect(report).toMatchObject({ inFlight: 0, left: 0, connections: 1 });
      expect(await server.drain()).toBe(report);
      const refused = await new Promise<string>((resolve) => {
        const probe = connect({ host: '127.0.0.1', port: mqttPort, ca, servername: 'localhost' }, () => resolve('connected'));
        probe.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
      });
      expect(refused).toBe('ECONNREFUSED');
      socket.destroy();
    } finally {
      dir.remove();
    }
  }, 30_000);
});

