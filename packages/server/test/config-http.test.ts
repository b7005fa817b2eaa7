import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { silentLogger } from '@opendps/model';
import { slowHttpClient } from '../../../test/support/slow-http-client';
import { createServer } from '../src';
import { ConfigError, resolveConfig, settingsFromEnv } from '../src/config';
import { tempDir } from './support';

describe('HTTP deadlines configuration', () => {
  const dir = tempDir();
  afterAll(() => dir.remove());

  it('takes each deadline from a flag, an OPENDPS_* variable or the file key http, and none by default', () => {
    expect(resolveConfig({}, {}, dir.path).http).toBeUndefined();
    const configFile = join(dir.path, 'http.json');
    writeFileSync(configFile, JSON.stringify({ http: { headersTimeoutMs: 5000, requestTimeoutMs: 60000 } }));
    const env = settingsFromEnv({ OPENDPS_CONFIG: configFile, OPENDPS_HTTP_REQUEST_TIMEOUT_MS: '45000' });
    expect(resolveConfig({ 'http-headers-timeout-ms': '8000' }, env, dir.path).http).toEqual({ headersTimeoutMs: 8000, requestTimeoutMs: 45000 });
    expect(resolveConfig({}, env, dir.path).http).toEqual({ headersTimeoutMs: 5000, requestTimeoutMs: 45000 });
  });

  it('refuses non-numbers, zero, unknown keys and a header deadline beyond the request deadline, naming where', () => {
    const refused = (flags: Record<string, string>, env: NodeJS.ProcessEnv = {}) => {
      try {
        resolveConfig(flags, settingsFromEnv(env), dir.path);
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        return (error as Error).message;
      }
      throw new Error('accepted');
    };
    expect(refused({ 'http-headers-timeout-ms': 'soon' })).toMatch(/^--http-headers-timeout-ms must be a whole number of milliseconds/);
    expect(refused({}, { OPENDPS_HTTP_REQUEST_TIMEOUT_MS: '0' })).toMatch(/^OPENDPS_HTTP_REQUEST_TIMEOUT_MS must be/);
    expect(refused({ 'http-headers-timeout-ms': '9000', 'http-request-timeout-ms': '8000' })).toBe(
      'http.headersTimeoutMs (9000) must not exceed http.requestTimeoutMs (8000).',
    );
    // Alone, a long header deadline lengthens the default request deadline with it.
    expect(resolveConfig({ 'http-headers-timeout-ms': '40000' }, {}, dir.path).http).toEqual({ headersTimeoutMs: 40000 });
    const typo = join(dir.path, 'typo.json');
    writeFileSync(typo, JSON.stringify({ http: { headerTimeoutMs: 5 } }));
    expect(refused({ config: typo })).toMatch(/http: unknown key 'headerTimeoutMs'/);
  });

  it('reaches the HTTPS listener and the built-in hub: slow-header clients of both are closed', async () => {
    const server = await createServer({
      dataDir: join(dir.path, 'running'),
      ports: { https: 0, mqtt: 0, amqp: 0, hub: 0 },
      logger: silentLogger,
      http: { headersTimeoutMs: 200, requestTimeoutMs: 400 },
    });
    try {
      const ca = readFileSync(server.caFile, 'utf8');
      const portOf = (endpoint: string | undefined) => Number(endpoint?.split(':').pop());
      // Checked every second: the deadline passes within 1.2 s.
      const slow = (port: number) => slowHttpClient({ port, ca, opening: 'GET / HTTP/1.1\r\nHost: localhost\r\n', giveUpMs: 3000 });
      const [https, hub] = await Promise.all([slow(portOf(server.endpoints.https)), slow(portOf(server.endpoints.hubs[0]))]);
      expect(https.answer).toMatch(/^HTTP\/1\.1 408 /);
      expect(hub.answer).toMatch(/^HTTP\/1\.1 408 /);
      expect([https.closedByServer, hub.closedByServer]).toEqual([true, true]);
    } finally {
      await server.stop();
    }
  });
});
