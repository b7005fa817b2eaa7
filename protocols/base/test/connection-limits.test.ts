import { connect as tcpConnect, createServer, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { Logger } from '@opendps/model';
import { createRootCa, createServerCertificate } from '@opendps/pki';
import { ConnectionLimits, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_ADDRESS, listenTls, sourceAddress, type TlsListener } from '../src';

const ca = createRootCa({ commonName: 'connection-limits test CA' });
const server = createServerCertificate(ca, ['localhost', '127.0.0.1']);

/** A logger that keeps its warn lines. */
function recordingLogger(): Logger & { warnings: Array<{ fields: Record<string, unknown>; message: string }> } {
  const warnings: Array<{ fields: Record<string, unknown>; message: string }> = [];
  const logger = {
    warnings,
    warn: (fields: Record<string, unknown>, message: string) => warnings.push({ fields, message }),
    info: () => undefined,
    debug: () => undefined,
    error: () => undefined,
    child: () => logger,
  };
  return logger as unknown as Logger & { warnings: typeof warnings };
}

/** Resolves 'open' when the server answered the handshake, 'refused' when it closed the socket first. */
function tlsAttempt(port: number, localAddress: string): Promise<{ outcome: 'open' | 'refused'; socket: TLSSocket }> {
  return new Promise((resolve) => {
    // TLS over a TCP socket bound to `localAddress`: another source address on loopback
    const socket = tlsConnect({ socket: tcpConnect({ port, host: '127.0.0.1', localAddress }).on('error', () => undefined), ca: ca.certificatePem, servername: 'localhost' });
    socket.once('secureConnect', () => resolve({ outcome: 'open', socket }));
    socket.once('error', () => undefined);
    socket.once('close', () => resolve({ outcome: 'refused', socket }));
  });
}

describe('sourceAddress', () => {
  test.each([
    ['::ffff:10.1.2.3', '10.1.2.3'],
    ['::FFFF:127.0.0.1', '127.0.0.1'],
    ['127.0.0.1', '127.0.0.1'],
    ['2001:DB8::1', '2001:db8::1'],
    [undefined, 'unknown'],
  ])('%s counts as %s', (remote, expected) => expect(sourceAddress(remote)).toBe(expected));
});

describe('connection limits on the TLS listener', () => {
  let listener: TlsListener;
  const serverSides: TLSSocket[] = [];
  const opened: Socket[] = [];

  beforeAll(async () => {
    listener = await listenTls(
      {
        port: 0,
        host: '127.0.0.1',
        tls: { cert: server.certificatePem, key: server.privateKeyPem },
        handshakeTimeoutMs: 5_000,
        logger: recordingLogger(),
        name: 'test',
        connectionLimits: { maxPerAddress: 2, maxTotal: 3 },
      },
      (socket) => serverSides.push(socket),
    );
  });

  afterAll(async () => {
    for (const socket of opened) socket.destroy();
    await listener.close();
  });

  const attempt = async (localAddress: string) => {
    const result = await tlsAttempt(listener.port, localAddress);
    opened.push(result.socket);
    return result.outcome;
  };

  test('the next connection from an address over its limit is refused at once; another address still gets in', async () => {
    expect(await attempt('127.0.0.1')).toBe('open');
    expect(await attempt('127.0.0.1')).toBe('open');
    expect(await attempt('127.0.0.1')).toBe('refused');
    expect(await attempt('127.0.0.2')).toBe('open');
  });

  test('over the total the next connection from any address is refused, and accepted again once one closes', async () => {
    expect(await attempt('127.0.0.3')).toBe('refused');
    const first = serverSides[0]!;
    const closed = new Promise((resolve) => first.once('close', resolve));
    first.destroy();
    await closed;
    await new Promise((resolve) => setImmediate(resolve));
    expect(await attempt('127.0.0.3')).toBe('open');
    expect(await attempt('127.0.0.4')).toBe('refused');
  });
});

describe('ConnectionLimits', () => {
  let plain: Server;
  let port: number;
  let time = 0;
  const logger = recordingLogger();
  const limits = new ConnectionLimits({ maxPerAddress: 1, maxTotal: 10, logger, name: 'plain', refusalLogIntervalMs: 1_000, now: () => time });
  const sockets: Socket[] = [];

  beforeAll(async () => {
    plain = createServer((socket) => sockets.push(socket));
    limits.attach(plain);
    await new Promise<void>((resolve) => plain.listen(0, '::', resolve));
    port = (plain.address() as { port: number }).port;
  });

  afterAll(async () => {
    limits.close();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => plain.close(resolve));
  });

  test('an IPv4-mapped IPv6 peer counts as its IPv4 address', async () => {
    const accepted = new Promise<void>((resolve) => plain.once('connection', () => resolve()));
    sockets.push(tcpConnect({ port, host: '127.0.0.1' }).on('error', () => undefined));
    await accepted;
    expect(limits.open('127.0.0.1')).toBe(1);
    expect(limits.open('::ffff:127.0.0.1')).toBe(1);
    // closed by the server at once: the same address over IPv6 is over its limit of 1
    await new Promise<void>((resolve) => {
      const socket = tcpConnect({ port, host: '::ffff:127.0.0.1' });
      socket.once('error', () => undefined);
      socket.once('close', () => resolve());
    });
    expect(limits.open()).toBe(1);
  });

  test('refusals are logged at most once per interval, each line summing those since the last', () => {
    logger.warnings.length = 0;
    time = 10_000;
    const fake = (remoteAddress: string) => ({ remoteAddress, destroy: jest.fn(), on: jest.fn(), once: jest.fn() }) as unknown as Socket;
    for (let i = 0; i < 50; i += 1) expect(limits.admit(fake('127.0.0.1'))).toBe(false);
    expect(logger.warnings[0]?.fields).toMatchObject({ refused: 1 });
    expect(logger.warnings).toHaveLength(1);
    time += 999;
    limits.admit(fake('127.0.0.1'));
    expect(logger.warnings).toHaveLength(1);
    time += 1;
    limits.admit(fake('::ffff:127.0.0.1'));
    expect(logger.warnings).toHaveLength(2);
    expect(logger.warnings[1]?.fields).toMatchObject({ listener: 'plain', refused: 51, overPerAddress: 51, from: { '127.0.0.1': 51 } });
  });
});

test('the defaults leave room for 10,000 devices from one host', () => {
  expect(DEFAULT_MAX_CONNECTIONS_PER_ADDRESS).toBeGreaterThan(10_000);
  expect(DEFAULT_MAX_CONNECTIONS).toBeGreaterThan(DEFAULT_MAX_CONNECTIONS_PER_ADDRESS);
  expect(new ConnectionLimits().maxPerAddress).toBe(DEFAULT_MAX_CONNECTIONS_PER_ADDRESS);
});
