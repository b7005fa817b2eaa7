import { createServer, type Server } from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { createWebSocketUpgrade, WEBSOCKET_PATH } from '../src';

/** Seeded, bounded: arbitrary upgrade requests, each on its own connection (docs/device-wire.md §5). */
const RUNS = { seed: 1, numRuns: 150 };
const PROTOCOLS = ['mqtt', 'AMQPWSB10'];

let server: Server;
let port: number;

beforeAll(async () => {
  const upgrade = createWebSocketUpgrade(Object.fromEntries(PROTOCOLS.map((p) => [p, (ws: { close(): void }) => ws.close()])));
  server = createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req, socket, head) => upgrade.handleUpgrade(req, socket, head));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

/** Sends raw bytes and reads until the server closes, or until the head of a 101 has arrived. */
function exchange(raw: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(raw, 'latin1'));
    let answer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer and no close for ${JSON.stringify(raw.slice(0, 200))}`));
    }, 10_000);
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
      if (answer.startsWith('HTTP/1.1 101') && answer.includes('\r\n\r\n')) done();
    });
    socket.on('close', done);
    socket.on('error', done);
  });
}

const headerValue = fc.oneof(fc.string({ maxLength: 30 }).map((s) => s.replace(/[\r\n]/g, '')), fc.constantFrom(...PROTOCOLS, 'MQTT', 'amqpwsb10', 'mqtt, AMQPWSB10', ' , ', 'x'.repeat(3000)));

describe('WebSocket upgrades on arbitrary requests', () => {
  test('every upgrade is answered 101 with an offered subprotocol, or refused with a coded DPS error', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'POST', 'PUT'),
        fc.constantFrom(WEBSOCKET_PATH, '/', '/%', `${WEBSOCKET_PATH}?a=b`, '/$iothub/%24websocket', `${WEBSOCKET_PATH}/`, '/%24iothub/websocket'),
        fc.option(headerValue, { nil: undefined }),
        fc.constantFrom('13', '8', '', 'abc'),
        fc.constantFrom('dGhlIHNhbXBsZSBub25jZQ==', '', 'short'),
        async (method, path, protocol, version, key) => {
          const headers = ['Host: localhost', 'Connection: Upgrade', 'Upgrade: websocket', `Sec-WebSocket-Version: ${version}`, `Sec-WebSocket-Key: ${key}`];
          if (protocol !== undefined) headers.push(`Sec-WebSocket-Protocol: ${protocol}`);
          const answer = await exchange(`${method} ${path} HTTP/1.1\r\n${headers.join('\r\n')}\r\n\r\n`);
          const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1]);
          if (status === 101) {
            const chosen = /\r\nsec-websocket-protocol: ([^\r]*)/i.exec(answer)?.[1] ?? '';
            const offered = (protocol ?? '').split(',').map((p) => p.trim());
            expect(offered).toContain(chosen);
            expect(PROTOCOLS.map((p) => p.toLowerCase())).toContain(chosen.toLowerCase());
          } else {
            expect(status).toBeGreaterThanOrEqual(400);
            expect(status).toBeLessThan(500);
            // Our refusals carry the DPS error body; ws's own (bad key or version) are plain 400s.
            if (answer.includes('x-ms-error-code')) expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toHaveProperty('errorCode');
          }
        },
      ),
      RUNS,
    );
  }, 60_000);
});
