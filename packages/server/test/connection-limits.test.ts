import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tcpConnect } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { silentLogger } from '@opendps/model';
import { ConfigError, resolveConfig, settingsFromEnv } from '../src/config';
import { createServer, type RunningServer } from '../src';
import { tempDir } from './support';

describe('limits configuration', () => {
  const dir = tempDir();
  afterAll(() => dir.remove());

  it('takes each limit from a flag, an OPENDPS_* variable or the config file, in that order', () => {
    const file = join(dir.path, 'limits.yaml');
    writeFileSync(file, 'limits: { maxConnectionsPerAddress: 11, maxConnections: 12, mqttRequestTimeoutMs: 13 }\n');
    const config = resolveConfig(
      { config: file, 'max-connections-per-address': '21' },
      settingsFromEnv({ OPENDPS_MAX_CONNECTIONS_PER_ADDRESS: '31', OPENDPS_MAX_CONNECTIONS: '32' }),
      dir.path,
    );
    expect(config.limits).toEqual({ maxConnectionsPerAddress: 21, maxConnections: 32, mqttRequestTimeoutMs: 13 });
    expect(resolveConfig({}, settingsFromEnv({ OPENDPS_MQTT_REQUEST_TIMEOUT_MS: '4000' }), dir.path).limits).toEqual({ mqttRequestTimeoutMs: 4000 });
    expect(resolveConfig({}, {}, dir.path).limits).toBeUndefined();
  });

  it.each([
    [{ 'max-connections': '0' }, {}, /--max-connections must be a whole number from 1 to 1000000; got "0"/],
    [{}, { OPENDPS_MAX_CONNECTIONS_PER_ADDRESS: 'many' }, /OPENDPS_MAX_CONNECTIONS_PER_ADDRESS must be a whole number/],
    [{ 'mqtt-request-timeout-ms': '99999999' }, {}, /--mqtt-request-timeout-ms must be a whole number from 1 to 3600000/],
  ])('refuses a bad value, naming where it came from', (flags, env, message) => {
    expect(() => resolveConfig(flags, settingsFromEnv(env), dir.path)).toThrow(ConfigError);
    expect(() => resolveConfig(flags, settingsFromEnv(env), dir.path)).toThrow(message);
  });

  it.each([
    ['{"limits": {"maxConnections": -1}}', /limits\.maxConnections must be a whole number/],
    ['{"limits": {"perAddress": 5}}', /unknown key 'perAddress'/],
    ['{"limits": 5}', /limits must be an object/],
  ])('refuses a bad config file: %s', (text, message) => {
    const file = join(dir.path, 'bad.json');
    writeFileSync(file, text);
    expect(() => resolveConfig({ config: file }, {}, dir.path)).toThrow(message);
  });
});

/** Resolves 'open' when the server answered the TLS handshake, 'refused' when it closed the socket first. */
function tlsAttempt(port: number, localAddress: string, ca: string): Promise<{ outcome: 'open' | 'refused'; socket: TLSSocket }> {
  return new Promise((resolve) => {
    // TLS over a TCP socket bound to `localAddress`: another source address on loopback
    const socket = tlsConnect({ socket: tcpConnect({ port, host: '127.0.0.1', localAddress }).on('error', () => undefined), ca, servername: 'localhost' });
    socket.once('secureConnect', () => resolve({ outcome: 'open', socket }));
    socket.once('error', () => undefined);
    socket.once('close', () => resolve({ outcome: 'refused', socket }));
  });
}

describe('a server with connection limits', () => {
  const dir = tempDir();
  let server: RunningServer;
  let ca: string;

  beforeAll(async () => {
    server = await createServer({
      dataDir: dir.path,
      ports: { https: 0, mqtt: 0, amqp: 0, hub: 0 },
      logger: silentLogger,
      limits: { maxConnectionsPerAddress: 1, maxConnections: 2, mqttRequestTimeoutMs: 200 },
    });
    ca = readFileSync(server.caFile, 'utf8');
  });

  afterAll(async () => {
    await server.stop();
    dir.remove();
  });

  const portOf = (endpoint: string | null | undefined): number => Number(endpoint?.split(':').pop());

  it.each(['mqtt', 'amqp', 'https', 'hub'] as const)(
    'the %s listener refuses the next connection from an address, then over the total, and accepts again once one closes',
    async (name) => {
      const port = portOf(name === 'hub' ? server.endpoints.hubs[0] : server.endpoints[name]);
      const held: TLSSocket[] = [];
      const attempt = async (localAddress: string) => {
        const { outcome, socket } = await tlsAttempt(port, localAddress, ca);
        if (outcome === 'open') held.push(socket);
        return outcome;
      };
      try {
        expect(await attempt('127.0.0.1')).toBe('open');
        expect(await attempt('127.0.0.1')).toBe('refused');
        expect(await attempt('127.0.0.2')).toBe('open');
        expect(await attempt('127.0.0.3')).toBe('refused');
        const first = held.shift()!;
        await new Promise<void>((resolve) => {
          first.once('close', () => resolve());
          first.destroy();
        });
        // the server counts the connection out when its side closes, a moment after ours
        let outcome = await attempt('127.0.0.1');
        for (let tries = 0; outcome === 'refused' && tries < 50; tries += 1) {
          await new Promise((resolve) => setImmediate(resolve));
          outcome = await attempt('127.0.0.1');
        }
        expect(outcome).toBe('open');
      } finally {
        for (const socket of held) socket.destroy();
      }
    },
  );

  it('closes an MQTT connection that sends no request within the configured timeout', async () => {
    const idScope = server.connection.idScope;
    const socket = tlsConnect({ port: portOf(server.endpoints.mqtt), host: '127.0.0.1', ca, servername: 'localhost' });
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write(mqttConnect('idle-1', `${idScope}/registrations/idle-1/api-version=2019-03-31`, `SharedAccessSignature sr=${idScope}/registrations/idle-1&sig=Zm9yZ2Vk&skn=registration&se=1795684788`));
    await closed;
    // CONNACK 0 (accepted, as DPS does before judging the SAS), then nothing until the close
    expect(Buffer.concat(received).toString('hex')).toBe('20020000');
  });
});

/** An MQTT 3.1.1 CONNECT with keepalive 0, clean session, username and password. */
function mqttConnect(clientId: string, username: string, password: string): Buffer {
  const text = (value: string) => {
    const bytes = Buffer.from(value, 'utf8');
    return Buffer.concat([Buffer.from([bytes.length >> 8, bytes.length & 0xff]), bytes]);
  };
  const body = Buffer.concat([text('MQTT'), Buffer.from([4, 0xc2, 0, 0]), text(clientId), text(username), text(password)]);
  const length: number[] = [];
  let remaining = body.length;
  do {
    const byte = remaining % 128;
    remaining = Math.floor(remaining / 128);
    length.push(remaining > 0 ? byte | 0x80 : byte);
  } while (remaining > 0);
  return Buffer.concat([Buffer.from([0x10, ...length]), body]);
}
