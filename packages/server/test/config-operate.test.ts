import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, resolveConfig } from '../src/config';
import { tempDir } from './support';

describe('operating settings: --bind, --tls-cert/--tls-key, --drain-timeout-ms, --workers', () => {
  const dir = tempDir();
  afterAll(() => dir.remove());

  it('binds loopback by default and takes an address from a flag, the environment or the file', () => {
    expect(resolveConfig({}, {}, dir.path).bind).toBe('127.0.0.1');
    expect(resolveConfig({ bind: '0.0.0.0' }, {}, dir.path).bind).toBe('0.0.0.0');
    expect(resolveConfig({}, { bind: '::1' }, dir.path).bind).toBe('::1');
    const file = join(dir.path, 'bind.json');
    writeFileSync(file, JSON.stringify({ bind: '::', drainTimeoutMs: 2500, workers: 4, tls: { cert: 'c.pem', key: 'k.pem' } }));
    const config = resolveConfig({ config: file }, {}, dir.path);
    expect(config).toMatchObject({ bind: '::', drainTimeoutMs: 2500, workers: 4, tls: { cert: join(dir.path, 'c.pem'), key: join(dir.path, 'k.pem') } });
  });

  it('refuses a bind that is not an IP address, naming where it came from', () => {
    expect(() => resolveConfig({ bind: 'localhost' }, {}, dir.path)).toThrow(new ConfigError('--bind must be an IP address such as 127.0.0.1 or 0.0.0.0 (all interfaces); got "localhost".'));
  });

  it('takes the certificate and key together, resolved against the working directory', () => {
    expect(resolveConfig({ 'tls-cert': 'a.pem', 'tls-key': 'b.pem' }, {}, dir.path).tls).toEqual({ cert: join(dir.path, 'a.pem'), key: join(dir.path, 'b.pem') });
    expect(() => resolveConfig({ 'tls-cert': 'a.pem' }, {}, dir.path)).toThrow(/--tls-cert and --tls-key .* go together/);
  });

  it('bounds the drain timeout and the worker count', () => {
    expect(resolveConfig({ 'drain-timeout-ms': '500' }, {}, dir.path).drainTimeoutMs).toBe(500);
    expect(() => resolveConfig({ 'drain-timeout-ms': '0' }, {}, dir.path)).toThrow(/--drain-timeout-ms must be a whole number of milliseconds/);
    expect(resolveConfig({ workers: '2' }, {}, dir.path).workers).toBe(2);
    expect(() => resolveConfig({ workers: '0' }, {}, dir.path)).toThrow(/--workers must be an integer from 1 to 64/);
  });
});
