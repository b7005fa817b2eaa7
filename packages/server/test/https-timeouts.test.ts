import { request } from 'node:https';
import type { Duplex } from 'node:stream';
import { connect } from 'node:tls';
import { silentLogger } from '@opendps/model';
import { createRootCa, createServerCertificate } from '@opendps/pki';
import { slowHttpClient } from '../../../test/support/slow-http-client';
import { createHttpsListener } from '../src';

/**
 * Slow clients on the HTTPS listener (device, service and admin APIs, WebSocket upgrades): headers
 * and whole requests have deadlines, checked often enough to matter; finished requests, slow
 * handlers and upgraded connections are not cut by them. Deadlines of 200/400 ms, checked every 20 ms.
 */
const ca = createRootCa({ commonName: 'timeouts test CA' });
const serverCertificate = createServerCertificate(ca, ['localhost', '127.0.0.1']);
const upgraded: Duplex[] = [];
const https = createHttpsListener({
  port: 0,
  bindAddress: '127.0.0.1',
  key: serverCertificate.privateKeyPem,
  cert: serverCertificate.certificatePem,
  logger: silentLogger,
  headersTimeoutMs: 200,
  requestTimeoutMs: 400,
  checkIntervalMs: 20,
  routes: [
    {
      matches: (pathname) => pathname === '/echo',
      async handle(req, res) {
        let body = '';
        for await (const chunk of req) body += (chunk as Buffer).toString();
        res.end(`echo ${body}`);
      },
    },
    {
      matches: (pathname) => pathname === '/slow-answer',
      async handle(_req, res) {
        await new Promise((resolve) => setTimeout(resolve, 600));
        res.end('late but whole');
      },
    },
  ],
  upgrade: (_req, socket) => {
    upgraded.push(socket);
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
  },
});
let port = 0;

beforeAll(async () => {
  port = await https.start();
});
afterAll(() => https.stop());

function call(method: string, path: string, body = ''): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, ca: ca.certificatePem, servername: 'localhost', agent: false }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const slow = (opening: string, trickle?: (n: number) => string) =>
  slowHttpClient({ port, ca: ca.certificatePem, opening, ...(trickle ? { trickle } : {}) });

describe('HTTPS listener deadlines', () => {
  it('closes a client trickling header lines with a 408 once the header deadline passed; others are served', async () => {
    const [trickling, served] = await Promise.all([slow('GET /echo HTTP/1.1\r\nHost: localhost\r\n'), call('POST', '/echo', 'hello')]);
    expect(trickling.closedByServer).toBe(true);
    expect(trickling.answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(trickling.sent).toBeGreaterThan(0);
    expect(served).toEqual({ status: 200, text: 'echo hello' });
  });

  it('closes a WebSocket upgrade request whose headers trickle, before it reaches the upgrade listener', async () => {
    const before = upgraded.length;
    const trickling = await slow('GET /$iothub/websocket HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n');
    expect(trickling.closedByServer).toBe(true);
    expect(trickling.answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(upgraded.length).toBe(before);
  });

  it('closes a connection that completes TLS and sends nothing', async () => {
    const silent = await slow('', () => '');
    expect(silent.closedByServer).toBe(true);
  });

  it('closes a client trickling its body once the request deadline passed', async () => {
    const trickling = await slow('POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n', () => 'a');
    expect(trickling.closedByServer).toBe(true);
    expect(trickling.answer).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('does not cut a request that arrived whole but takes longer to answer, nor an upgraded connection', async () => {
    const before = upgraded.length;
    const socket = connect({ host: '127.0.0.1', port, ca: ca.certificatePem, servername: 'localhost' }, () =>
      socket.write('GET /$iothub/websocket HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'),
    );
    let closed = false;
    socket.on('close', () => (closed = true));
    socket.on('error', () => undefined);
    // The answer takes 600 ms, past both deadlines; the upgraded socket lives through it too.
    expect(await call('GET', '/slow-answer')).toEqual({ status: 200, text: 'late but whole' });
    expect(upgraded.length).toBe(before + 1);
    expect(closed).toBe(false);
    socket.destroy();
  });
});

describe('HTTPS listener deadline options', () => {
  it('refuses a header deadline beyond the request deadline, and a zero (Node reads it as none)', () => {
    const base = { port: 0, key: serverCertificate.privateKeyPem, cert: serverCertificate.certificatePem, routes: [], logger: silentLogger };
    expect(() => createHttpsListener({ ...base, headersTimeoutMs: 500, requestTimeoutMs: 400 })).toThrow(/headersTimeoutMs .* requestTimeoutMs/);
    expect(() => createHttpsListener({ ...base, headersTimeoutMs: 0 })).toThrow(/headersTimeoutMs must be/);
  });
});
