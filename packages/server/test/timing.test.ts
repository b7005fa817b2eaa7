import { readFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { silentLogger } from '@opendps/model';
import { createServer, type RunningServer } from '../src';
import { webhookTiming } from '../src/timing';
import { tempDir } from './support';

describe('createServer clock and timeouts', () => {
  const dir = tempDir();
  let now = Date.now();
  let server: RunningServer;

  beforeAll(async () => {
    server = await createServer({
      dataDir: dir.path,
      ports: { https: 0, mqtt: 0, amqp: 0, hub: 0 },
      logger: silentLogger,
      clock: { now: () => now },
      timeouts: { connectTimeoutMs: 200 },
    });
  });
  afterAll(async () => {
    await server?.stop();
    dir.remove();
  });

  it('the embedded store compares expiry with the server clock', async () => {
    const docs = server.store.collection<{ n: number }>('timing', 'things');
    await docs.put('a', { n: 1 }, { ttlSeconds: 60 });
    now += 59_000;
    expect((await docs.get('a'))?.value).toEqual({ n: 1 });
    now += 1001;
    expect(await docs.get('a')).toBeUndefined();
  });

  it.each(['mqtt', 'amqp'] as const)('%s: a TLS client that sends nothing is closed after timeouts.connectTimeoutMs (default 10 s)', async (name) => {
    const port = Number(server.endpoints[name]?.split(':')[1]);
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: readFileSync(server.caFile) });
    socket.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    // Far below the 10 s default and far above 200 ms: only the option can close it in time.
    const bound = new Promise<string>((resolve) => setTimeout(() => resolve('still open'), 5000).unref());
    const closed = new Promise<string>((resolve) => socket.once('close', () => resolve('closed')));
    expect(await Promise.race([closed, bound])).toBe('closed');
  });
});

describe('webhook timing', () => {
  it('takes timeouts over the operator config over the client defaults; the back-off doubles', () => {
    expect(webhookTiming({}, undefined)).toEqual({});
    const fromConfig = webhookTiming({}, { timeoutMs: 4000, attempts: 5, backoffMs: 100 });
    expect(fromConfig).toMatchObject({ timeoutMs: 4000, attempts: 5 });
    expect([1, 2, 3].map((retry) => fromConfig.backoffMs?.(retry))).toEqual([100, 200, 400]);
    const both = webhookTiming({ webhookAttemptMs: 250, webhookBackoffMs: 0 }, { timeoutMs: 4000, attempts: 5, backoffMs: 100 });
    expect(both).toMatchObject({ timeoutMs: 250, attempts: 5 });
    expect(both.backoffMs?.(2)).toBe(0);
  });
});
