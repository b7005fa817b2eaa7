import { request } from 'node:https';
import { createConnection } from 'node:net';
import { connect as connectTls, type TLSSocket } from 'node:tls';
import { silentLogger } from '@opendps/model';
import { createLeaf, createRootCa, createServerCertificate } from '@opendps/pki';
import { createHttpsListener, Lifecycle, type Listener } from '../src';

const ca = createRootCa({ commonName: 'listener test CA' });
const serverCertificate = createServerCertificate(ca, ['localhost', '127.0.0.1']);
// A device certificate from a CA the listener knows nothing about: attestation, not TLS, judges it.
const device = createLeaf(createRootCa({ commonName: 'unrelated CA' }), { commonName: 'device-1' });

function listener(upgradeLog: string[] = []) {
  return createHttpsListener({
    port: 0,
    bindAddress: '127.0.0.1',
    key: serverCertificate.privateKeyPem,
    cert: serverCertificate.certificatePem,
    logger: silentLogger,
    routes: [
      {
        matches: (pathname) => pathname.startsWith('/whoami'),
        async handle(req, res) {
          const peer = (req.socket as TLSSocket).getPeerCertificate();
          res.end(JSON.stringify({ cn: peer.subject?.CN ?? null }));
        },
      },
      {
        matches: (pathname) => pathname === '/boom',
        async handle() {
          throw new Error('secret detail');
        },
      },
    ],
    upgrade: (req, socket) => {
      upgradeLog.push(`${req.url} ${req.headers['sec-websocket-protocol']}`);
      socket.end('HTTP/1.1 101 Switching Protocols\r\n\r\n');
    },
  });
}

function call(port: number, path: string, withCertificate: boolean): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        ca: ca.certificatePem,
        servername: 'localhost',
        ...(withCertificate ? { cert: device.certificatePem, key: device.privateKeyPem } : {}),
        agent: false,
      },
      (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

function upgrade(port: number, path: string, protocol: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connectTls({ host: '127.0.0.1', port, ca: ca.certificatePem, servername: 'localhost' }, () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
          `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: ${protocol}\r\n\r\n`,
      );
    });
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    socket.on('end', () => resolve(answer.split('\r\n')[0] ?? ''));
    socket.on('error', reject);
  });
}

describe('HTTPS listener', () => {
  const upgrades: string[] = [];
  const https = listener(upgrades);
  let port = 0;
  beforeAll(async () => {
    port = await https.start();
  });
  afterAll(() => https.stop());

  it('accepts a client certificate from any CA and shows it to the route, and accepts none', async () => {
    expect(JSON.parse((await call(port, '/whoami', true)).body)).toEqual({ cn: 'device-1' });
    expect(JSON.parse((await call(port, '/whoami', false)).body)).toEqual({ cn: null });
  });

  it('answers unmatched paths with a DPS 404 and failing routes with a 500 that hides the detail', async () => {
    const missing = await call(port, '/nothing', false);
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body)).toMatchObject({ errorCode: 404001 });
    const failed = await call(port, '/boom', false);
    expect(failed.status).toBe(500);
    expect(JSON.parse(failed.body)).toMatchObject({ errorCode: 500001 });
    expect(failed.body).not.toContain('secret detail');
  });

  it('hands every WebSocket upgrade to the upgrade listener', async () => {
    expect(await upgrade(port, '/$iothub/websocket?iothub-no-client-cert=true', 'mqtt')).toBe('HTTP/1.1 101 Switching Protocols');
    expect(await upgrade(port, '/$IOTHUB/websocket', 'AMQPWSB10')).toBe('HTTP/1.1 101 Switching Protocols');
    expect(upgrades).toEqual(['/$iothub/websocket?iothub-no-client-cert=true mqtt', '/$IOTHUB/websocket AMQPWSB10']);
  });

  it('refuses upgrades when nothing listens for them', async () => {
    const bare = createHttpsListener({ port: 0, key: serverCertificate.privateKeyPem, cert: serverCertificate.certificatePem, routes: [], logger: silentLogger });
    const barePort = await bare.start();
    try {
      expect(await upgrade(barePort, '/$iothub/websocket', 'mqtt')).toBe('HTTP/1.1 400 Bad Request');
    } finally {
      await bare.stop();
    }
  });
});

describe('Lifecycle', () => {
  const fake = (name: string, log: string[], fail = false): Listener => ({
    name,
    start: async () => {
      if (fail) throw new Error(`${name} cannot listen`);
      log.push(`start ${name}`);
      return 1000 + log.length;
    },
    stop: async () => {
      log.push(`stop ${name}`);
    },
  });

  it('starts in order, reports ports by name, stops in reverse and then cleans up, once', async () => {
    const log: string[] = [];
    const lifecycle = new Lifecycle();
    lifecycle.onStop(() => log.push('close store'));
    lifecycle.add(fake('https', log));
    lifecycle.add(fake('mqtt', log));
    expect(await lifecycle.start()).toEqual({ https: 1001, mqtt: 1002 });
    await Promise.all([lifecycle.stop(), lifecycle.stop()]);
    expect(log).toEqual(['start https', 'start mqtt', 'stop mqtt', 'stop https', 'close store']);
  });

  it('stops what started when a later listener fails', async () => {
    const log: string[] = [];
    const lifecycle = new Lifecycle();
    lifecycle.onStop(() => log.push('close store'));
    lifecycle.add(fake('https', log));
    lifecycle.add(fake('amqp', log, true));
    await expect(lifecycle.start()).rejects.toThrow('amqp cannot listen');
    expect(log).toEqual(['start https', 'stop https', 'close store']);
  });
});

describe('HTTPS listener handshake timeout', () => {
  it('closes a client that connects and never starts TLS', async () => {
    const https = createHttpsListener({
      port: 0,
      bindAddress: '127.0.0.1',
      key: serverCertificate.privateKeyPem,
      cert: serverCertificate.certificatePem,
      routes: [],
      logger: silentLogger,
      handshakeTimeoutMs: 200,
    });
    const port = await https.start();
    try {
      const closed = await new Promise<boolean>((resolve) => {
        const socket = createConnection({ host: '127.0.0.1', port });
        const timer = setTimeout(() => resolve(false), 5000);
        socket.on('close', () => {
          clearTimeout(timer);
          resolve(true);
        });
        socket.on('error', () => undefined);
      });
      expect(closed).toBe(true);
    } finally {
      await https.stop();
    }
  });
});
