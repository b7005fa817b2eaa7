import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, resolveConfig, settingsFromEnv, webhookPolicy } from '../src/config';
import { main } from '../src/cli/main';
import { captureIo, tempDir } from './support';

describe('start configuration', () => {
  const dir = tempDir();
  afterAll(() => dir.remove());

  const file = (name: string, text: string): string => {
    const path = join(dir.path, name);
    writeFileSync(path, text);
    return path;
  };

  it('uses the documented defaults', () => {
    const config = resolveConfig({}, {}, dir.path);
    expect(config).toEqual({
      dataDir: join(dir.path, '.opendps'),
      host: 'localhost',
      // No hub port: the default hub is served on the MQTT and HTTPS listeners.
      ports: { mqtt: 8883, amqp: 5671, https: 8443 },
      bind: '127.0.0.1',
      drainTimeoutMs: 10000,
      workers: 1,
    });
    expect(resolveConfig({ 'hub-port': '8884' }, {}, dir.path).ports).toEqual({ mqtt: 8883, amqp: 5671, https: 8443, hub: 8884 });
  });

  it('reads a built-in hub host name: alone it serves the hub on the device listeners, with a port on its own', () => {
    const configFile = file(
      'hubs.json',
      JSON.stringify({
        instances: [
          {
            name: 'a',
            linkedHubs: [
              { name: 'shared', builtin: { hostName: 'hub-2.example.com' } },
              { name: 'own', builtin: { hostName: 'own.example.com', port: 0 } },
              { name: 'legacy', builtin: {} },
            ],
          },
        ],
      }),
    );
    expect(resolveConfig({ config: configFile }, {}, dir.path).instances?.[0]?.linkedHubs?.map((hub) => hub.builtin)).toEqual([
      { hostName: 'hub-2.example.com' },
      { hostName: 'own.example.com', port: 0 },
      { port: 0 },
    ]);
  });

  it('takes flags over environment over file over defaults, key by key', () => {
    const configFile = file(
      'layers.json',
      JSON.stringify({ host: 'file.example', dataDir: 'from-file', ports: { mqtt: 1001, amqp: 1002, https: 1003 } }),
    );
    const env = settingsFromEnv({
      OPENDPS_CONFIG: configFile,
      OPENDPS_HOST: 'env.example',
      OPENDPS_AMQP_PORT: '2002',
      OPENDPS_HTTPS_PORT: '2003',
      OPENDPS_REDIS_URL: 'redis://127.0.0.1:7000',
    });
    const config = resolveConfig({ 'https-port': '0' }, env, dir.path);
    expect(config.ports).toEqual({ mqtt: 1001, amqp: 2002, https: 0 });
    expect(config.host).toBe('env.example');
    expect(config.redisUrl).toBe('redis://127.0.0.1:7000');
    // A relative dataDir in a file is relative to the file.
    expect(config.dataDir).toBe(join(dir.path, 'from-file'));
    expect(config.configFile).toBe(configFile);
  });

  it('lets --config override OPENDPS_CONFIG and ignores empty variables', () => {
    const fromEnv = file('env.json', JSON.stringify({ host: 'env-file.example' }));
    const fromFlag = file('flag.json', JSON.stringify({ host: 'flag-file.example' }));
    const config = resolveConfig({ config: fromFlag }, settingsFromEnv({ OPENDPS_CONFIG: fromEnv, OPENDPS_HOST: '' }), dir.path);
    expect(config.host).toBe('flag-file.example');
  });

  it('reads YAML with the whole documented shape', () => {
    const configFile = file(
      'full.yaml',
      [
        'host: dps.example',
        'redisUrl: null',
        'ports: { mqtt: 0, amqp: 0, https: 0, hub: 0 }',
        'instances:',
        '  - name: default',
        '    idScope: 0ne0000ABCD',
        '    allocationPolicy: hashed',
        '    linkedHubs:',
        '      - { name: hub-a, builtin: { port: 0 }, allocationWeight: 1, location: westeurope }',
        '      - { name: hub-b, builtin: { port: 0 }, allocationWeight: 2, applyAllocationPolicy: true }',
        '      - { name: hub-c, connectionString: "HostName=c.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=a2V5" }',
        'latency:',
        '  networks: { 127.0.0.0/8: westeurope }',
        '  table: { westeurope: { hub-a: 5, hub-b: 40 } }',
      ].join('\n'),
    );
    const config = resolveConfig({ config: configFile }, {}, dir.path);
    expect(config.host).toBe('dps.example');
    expect(config.redisUrl).toBeUndefined();
    expect(config.ports).toEqual({ mqtt: 0, amqp: 0, https: 0, hub: 0 });
    expect(config.instances).toEqual([
      {
        name: 'default',
        idScope: '0ne0000ABCD',
        allocationPolicy: 'hashed',
        linkedHubs: [
          { name: 'hub-a', builtin: { port: 0 }, allocationWeight: 1, location: 'westeurope' },
          { name: 'hub-b', builtin: { port: 0 }, allocationWeight: 2, applyAllocationPolicy: true },
          { name: 'hub-c', connectionString: 'HostName=c.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=a2V5' },
        ],
      },
    ]);
    expect(config.latency).toEqual({ networks: { '127.0.0.0/8': 'westeurope' }, table: { westeurope: { 'hub-a': 5, 'hub-b': 40 } } });
  });

  it.each([
    [{ 'https-port': '65536' }, {}, /--https-port must be a port number/],
    [{ 'mqtt-port': '-1' }, {}, /--mqtt-port must be a port number/],
    [{ host: 'localhost:8443' }, {}, /--host must be a host name or IP address without a port/],
    [{ 'redis-url': 'http://x' }, {}, /--redis-url must be a redis:\/\//],
    [{}, { OPENDPS_HUB_PORT: 'abc' }, /OPENDPS_HUB_PORT must be a port number/],
    [{}, { OPENDPS_HOST: 'bad host' }, /OPENDPS_HOST must be a host name/],
  ])('refuses bad values with a message naming their source: %j %j', (flags, env, message) => {
    expect(() => resolveConfig(flags, settingsFromEnv(env), dir.path)).toThrow(message);
    expect(() => resolveConfig(flags, settingsFromEnv(env), dir.path)).toThrow(ConfigError);
  });

  it.each([
    ['{"ports": {"https": "x"}}', /ports\.https must be a port number/],
    ['{"hots": "typo"}', /unknown key 'hots'/],
    ['{"instances": [{"name": "a"}, {"name": "A"}]}', /instance names must be unique/],
    ['{"instances": [{"name": "a", "idScope": "0ne-bad"}]}', /instances\[0\]\.idScope must be '0ne'/],
    ['{"instances": [{"name": "a", "allocationPolicy": "custom"}]}', /allocationPolicy must be one of hashed, geoLatency, static/],
    ['{"instances": [{"name": "a", "linkedHubs": [{"name": "h"}]}]}', /linkedHubs\[0\] must have exactly one of 'builtin' or 'connectionString'/],
    ['{"instances": [{"name": "a", "linkedHubs": [{"name": "h", "connectionString": "nope"}]}]}', /connectionString must be 'HostName=/],
    ['{"instances": [{"name": "a", "linkedHubs": [{"name": "h", "builtin": {}, "allocationWeight": 0}]}]}', /allocationWeight must be an integer from 1 to 1000/],
    ['{"instances": [{"name": "a", "linkedHubs": [{"name": "h", "builtin": {"hostName": "hub:8883"}}]}]}', /builtin\.hostName must be a host name or IP address without a port/],
    ['{"instances": [{"name": "a", "linkedHubs": [{"name": "h", "builtin": {"host": "x"}}]}]}', /unknown key 'host'/],
    ['{"latency": {"networks": {"10.0.0.0/33": "x"}}}', /'10\.0\.0\.0\/33' is not an IPv4 CIDR/],
    ['{"latency": {"table": {"x": {"hub-a": -1}}}}', /latency\.table\.x\.hub-a must be a number of milliseconds/],
    ['{"webhook": {"timeoutMs": "10s"}}', /webhook\.timeoutMs must be an integer from 100 to 120000/],
    ['{"webhook": {"retries": 3}}', /webhook: unknown key 'retries'/],
    ['{"webhook": 3}', /webhook must be an object/],
    ['[1, 2]', /the top level must be an object/],
    ['{not json', /is not valid JSON/],
  ])('refuses a bad config file %s', (text, message) => {
    const configFile = file('bad.json', text);
    expect(() => resolveConfig({ config: configFile }, {}, dir.path)).toThrow(message);
  });

  it('takes the webhook timing from a flag, OPENDPS_WEBHOOK_* or the file, key by key', () => {
    const configFile = file('webhook.json', JSON.stringify({ webhook: { timeoutMs: 4000, attempts: 5, backoffMs: 100 } }));
    expect(resolveConfig({ config: configFile }, {}, dir.path).webhook).toEqual({ timeoutMs: 4000, attempts: 5, backoffMs: 100 });
    const env = settingsFromEnv({ OPENDPS_CONFIG: configFile, OPENDPS_WEBHOOK_ATTEMPTS: '2', OPENDPS_WEBHOOK_BACKOFF_MS: '0' });
    expect(resolveConfig({ 'webhook-timeout-ms': '2500' }, env, dir.path).webhook).toEqual({ timeoutMs: 2500, attempts: 2, backoffMs: 0 });
    // None given: no key, the client's defaults (10 s, 3 attempts, 500 ms doubling) apply.
    expect(resolveConfig({}, {}, dir.path)).not.toHaveProperty('webhook');
  });

  it.each([
    [{ 'webhook-timeout-ms': '50' }, {}, /--webhook-timeout-ms must be an integer from 100 to 120000; got "50"/],
    [{ 'webhook-attempts': '0' }, {}, /--webhook-attempts must be an integer from 1 to 10/],
    [{}, { OPENDPS_WEBHOOK_BACKOFF_MS: '-5' }, /OPENDPS_WEBHOOK_BACKOFF_MS must be an integer from 0 to 60000/],
    [{}, { OPENDPS_WEBHOOK_ATTEMPTS: '2.5' }, /OPENDPS_WEBHOOK_ATTEMPTS must be an integer from 1 to 10/],
  ])('refuses bad webhook timing with a message naming its source: %j %j', (flags, env, message) => {
    expect(() => resolveConfig(flags, settingsFromEnv(env), dir.path)).toThrow(message);
    expect(() => resolveConfig(flags, settingsFromEnv(env), dir.path)).toThrow(ConfigError);
  });

  it('resolves the webhook policy: http:// to loopback only on a loopback host unless set, link-local never unless set', () => {
    expect(webhookPolicy(resolveConfig({}, {}, dir.path))).toEqual({ allowHttp: true, allowLinkLocal: false });
    expect(webhookPolicy(resolveConfig({ host: 'dps.example.com' }, {}, dir.path))).toEqual({ allowHttp: false, allowLinkLocal: false });
    expect(webhookPolicy(resolveConfig({ host: '127.0.0.1', 'allow-http-webhooks': 'false' }, {}, dir.path))).toEqual({ allowHttp: false, allowLinkLocal: false });
    const configFile = file('webhooks.json', JSON.stringify({ host: 'dps.example.com', allowHttpWebhooks: true, allowLinkLocalWebhooks: true }));
    expect(webhookPolicy(resolveConfig({ config: configFile }, {}, dir.path))).toEqual({ allowHttp: true, allowLinkLocal: true });
    const env = settingsFromEnv({ OPENDPS_ALLOW_LINK_LOCAL_WEBHOOKS: 'TRUE' });
    expect(webhookPolicy(resolveConfig({ config: configFile, 'allow-link-local-webhooks': 'false' }, env, dir.path)).allowLinkLocal).toBe(false);
    expect(webhookPolicy(resolveConfig({}, env, dir.path)).allowLinkLocal).toBe(true);
    expect(() => resolveConfig({ 'allow-http-webhooks': 'yes' }, {}, dir.path)).toThrow(/--allow-http-webhooks must be true or false/);
    expect(() => resolveConfig({ config: file('bad-webhooks.json', '{"allowLinkLocalWebhooks": 1}') }, {}, dir.path)).toThrow(/allowLinkLocalWebhooks must be true or false/);
  });

  it('names a config file that cannot be read', () => {
    expect(() => resolveConfig({ config: join(dir.path, 'missing.json') }, {}, dir.path)).toThrow(/Cannot read the config file .*missing\.json: ENOENT/);
  });

  it('makes `opendps start` exit 2 with the message and no stack trace', async () => {
    const io = captureIo(dir.path, { OPENDPS_AMQP_PORT: '99999' });
    expect(await main(['start', '--data-dir', join(dir.path, 'never')], io)).toBe(2);
    const stderr = io.stderr.join('');
    expect(stderr).toContain('OPENDPS_AMQP_PORT must be a port number from 0 to 65535');
    expect(stderr).not.toMatch(/\n\s+at /);
  });
});
