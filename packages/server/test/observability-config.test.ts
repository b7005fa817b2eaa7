import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, resolveConfig, validateConfigFile } from '../src/config';
import { main } from '../src/cli/main';
import { createLogger } from '../src/logger';
import { get } from 'node:http';
import { createServer } from '../src/server';
import { captureIo, lineSink, tempDir } from './support';

describe('opendps --version', () => {
  it('prints the version of packages/server/package.json', async () => {
    const { version } = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string };
    const io = captureIo(process.cwd());
    expect(await main(['--version'], io)).toBe(0);
    expect(io.stdout).toEqual([version]);
    expect(version).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('metrics port and log level settings', () => {
  it('--metrics-port, OPENDPS_METRICS_PORT and the file key `metrics`; loopback unless --metrics-bind', () => {
    expect(resolveConfig({}, {}).metrics).toBeUndefined();
    expect(resolveConfig({ 'metrics-port': '0' }, {}).metrics).toEqual({ port: 0, bind: '127.0.0.1' });
    expect(resolveConfig({}, { 'metrics-port': '9464', 'metrics-bind': '0.0.0.0' }).metrics).toEqual({ port: 9464, bind: '0.0.0.0' });
    expect(validateConfigFile({ metrics: { port: 9100 } }, 'c.json').metrics).toEqual({ port: 9100 });
    expect(() => resolveConfig({ 'metrics-port': '70000' }, {})).toThrow(/--metrics-port must be a port number/);
    expect(() => resolveConfig({ 'metrics-bind': 'example.com' }, {})).toThrow(/--metrics-bind must be an IP address/);
    expect(() => validateConfigFile({ metrics: { prt: 1 } }, 'c.json')).toThrow(ConfigError);
  });

  it('--log-level and OPENDPS_LOG_LEVEL take the documented levels and refuse others', () => {
    expect(resolveConfig({ 'log-level': 'DEBUG' }, { 'log-level': 'warn' }).logLevel).toBe('debug');
    expect(resolveConfig({}, { 'log-level': 'warn' }).logLevel).toBe('warn');
    expect(() => resolveConfig({}, { 'log-level': 'verbose' })).toThrow(/OPENDPS_LOG_LEVEL must be one of trace, debug, info, warn, error, fatal, silent/);
    expect(validateConfigFile({ logLevel: 'error' }, 'c.json').logLevel).toBe('error');
  });

  it('a level filters lines; a child re-binding a key or a line repeating one writes it once', () => {
    const sink = lineSink();
    const logger = createLogger({ level: 'warn', destination: sink.stream }).child({ category: 'DeviceOperations', hub: 'a' });
    logger.info({}, 'hidden');
    const child = logger.child({ category: 'DeviceOperations', protocol: 'mqtt' });
    child.warn({ hub: 'b' }, 'shown');
    expect(sink.lines).toHaveLength(1);
    const line = sink.lines[0] ?? '';
    expect(line.match(/"category"/g)).toHaveLength(1);
    expect(line.match(/"hub"/g)).toHaveLength(1);
    expect(JSON.parse(line)).toMatchObject({ level: 40, category: 'DeviceOperations', protocol: 'mqtt', hub: 'b', msg: 'shown' });
    expect(JSON.parse(line).time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });
});

describe('the metrics endpoint in connection.json', () => {
  it('is --host:port when the metrics port binds every interface, and answers there', async () => {
    const dir = tempDir();
    const server = await createServer({
      dataDir: dir.path,
      ports: { https: 0, mqtt: 0, amqp: 0, hub: 0 },
      metrics: { port: 0, bind: '0.0.0.0' },
      logger: createLogger({ destination: lineSink().stream }),
    });
    try {
      expect(server.endpoints.metrics).toMatch(/^localhost:\d+$/);
      const status = await new Promise<number>((resolve, reject) => {
        get(`http://${server.endpoints.metrics ?? ''}/healthz`, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        }).on('error', reject);
      });
      expect(status).toBe(200);
    } finally {
      await server.stop();
      dir.remove();
    }
  });
});
