import type { IncomingMessage } from 'node:http';
import type { Logger } from '@opendps/model';
import { WebSocket } from 'ws';
import { createDeviceApi, createWebSocketUpgrade, type WebSocketUpgradeOptions } from '../src';
import { ScriptedRegistration, request, startServer, type TestServer } from './support';

interface Accepted {
  protocol: string;
  ws: WebSocket;
  req: IncomingMessage;
}

let server: TestServer;
const accepted: Accepted[] = [];

/** Handlers that echo each message back, prefixed with their name, so the dispatch is visible. */
function echo(name: string) {
  return (ws: WebSocket, req: IncomingMessage): void => {
    accepted.push({ protocol: name, ws, req });
    ws.on('message', (data: Buffer) => ws.send(Buffer.concat([Buffer.from(`${name}:`), data])));
  };
}

async function start(options?: WebSocketUpgradeOptions): Promise<TestServer> {
  const upgrade = createWebSocketUpgrade({ mqtt: echo('mqtt'), AMQPWSB10: echo('amqp') }, options);
  return startServer([createDeviceApi({ registration: new ScriptedRegistration() })], upgrade);
}

beforeAll(async () => {
  server = await start();
});
afterAll(() => server.close());
beforeEach(() => {
  accepted.length = 0;
});

function open(target: TestServer, protocols: string | string[] | undefined, path = '/$iothub/websocket'): WebSocket {
  return new WebSocket(`wss://localhost:${target.port}${path}`, protocols, { ca: target.ca, perMessageDeflate: true });
}

function connected(ws: WebSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`unexpected ${res.statusCode}`)));
  });
}

function firstMessage(ws: WebSocket): Promise<string> {
  return new Promise((resolve) => ws.once('message', (data: Buffer) => resolve(data.toString())));
}

/** The HTTP answer to a refused upgrade: its status, headers and JSON body. */
function refusal(ws: WebSocket): Promise<{ status: number; headers: IncomingMessage['headers']; body: { errorCode: number; trackingId: string; message: string } }> {
  return new Promise((resolve, reject) => {
    ws.once('open', () => reject(new Error('the upgrade was accepted')));
    ws.once('error', () => undefined);
    ws.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(Buffer.concat(chunks).toString()) }));
    });
  });
}

function closeOf(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => ws.once('close', (code: number) => resolve(code)));
}

it('dispatches subprotocol mqtt to the mqtt handler, with permessage-deflate', async () => {
  const ws = open(server, 'mqtt');
  await connected(ws);
  expect(ws.protocol).toBe('mqtt');
  expect(ws.extensions).toContain('permessage-deflate');
  ws.send(Buffer.from([0x10, 0x00]));
  expect(await firstMessage(ws)).toBe('mqtt:\u0010\u0000');
  expect(accepted.map((entry) => entry.protocol)).toEqual(['mqtt']);
  expect(accepted[0]?.req.url).toBe('/$iothub/websocket');
  ws.close();
});

it('dispatches AMQPWSB10 case-insensitively and echoes the client spelling', async () => {
  const ws = open(server, ['unknown', 'amqpwsb10']);
  await connected(ws);
  expect(ws.protocol).toBe('amqpwsb10');
  ws.send('AMQP');
  expect(await firstMessage(ws)).toBe('amqp:AMQP');
  const upper = open(server, 'MQTT');
  await connected(upper);
  expect(upper.protocol).toBe('MQTT');
  expect(accepted.map((entry) => entry.protocol)).toEqual(['amqp', 'mqtt']);
  ws.close();
  upper.close();
});

it.each([
  ['an unknown subprotocol', 'stomp', '/$iothub/websocket', 400, 400015],
  ['no subprotocol', undefined, '/$iothub/websocket', 400, 400015],
  ['the wrong path', 'mqtt', '/$servicebus/websocket', 404, 404001],
  ['a device API path', 'mqtt', '/0ne00000A0A/registrations/dev-1/register', 404, 404001],
])('refuses %s with a coded JSON body', async (_name, protocol, path, status, errorCode) => {
  const reply = await refusal(open(server, protocol, path));
  expect(reply.status).toBe(status);
  expect(reply.headers['content-type']).toBe('application/json; charset=utf-8');
  expect(reply.headers['x-ms-error-code']).toBe(String(errorCode));
  expect(reply.body.errorCode).toBe(errorCode);
  expect(reply.headers['x-ms-request-id']).toBe(reply.body.trackingId);
  expect(accepted).toHaveLength(0);
});

it('accepts the path percent-encoded', async () => {
  const ws = open(server, 'mqtt', '/%24iothub/websocket');
  await connected(ws);
  expect(accepted.map((entry) => entry.protocol)).toEqual(['mqtt']);
  ws.close();
});

it('closes a connection whose message exceeds maxPayload with 1009, and only that one', async () => {
  const small = await start({ maxPayload: 1024 });
  try {
    const big = open(small, 'mqtt');
    const other = open(small, 'mqtt');
    await Promise.all([connected(big), connected(other)]);
    const closed = closeOf(big);
    big.send(Buffer.alloc(2048, 1));
    expect(await closed).toBe(1009);
    other.send('still here');
    expect(await firstMessage(other)).toBe('mqtt:still here');
    other.close();
  } finally {
    await small.close();
  }
});

it('bounds a compressed message by its inflated size: 16 MiB of zeros (~16 KiB on the wire) is closed with 1009', async () => {
  const bomb = open(server, 'AMQPWSB10');
  await connected(bomb);
  const closed = closeOf(bomb);
  // ws counts inflated bytes against maxPayload (256 KiB) and stops inflating there
  bomb.send(Buffer.alloc(16 * 1024 * 1024), { compress: true });
  expect(await closed).toBe(1009);
});

it('keeps serving HTTP and WebSockets after refusals', async () => {
  const ws = open(server, 'mqtt');
  await connected(ws);
  ws.close();
  const reply = await request(server, { method: 'DELETE', path: '/0ne00000A0A/registrations/dev-1/register' });
  expect(reply.status).toBe(405);
});

it('refuses an upgrade to anything but websocket with a coded 400', async () => {
  const reply = await request(server, {
    method: 'GET',
    path: '/$iothub/websocket',
    headers: { connection: 'Upgrade', upgrade: 'h2c', 'sec-websocket-protocol': 'mqtt' },
  });
  expect(reply.status).toBe(400);
  expect(reply.headers['content-type']).toBe('application/json; charset=utf-8');
  expect(reply.json).toMatchObject({ errorCode: 400015 });
});

it('closes with 1011 when a handler throws, and keeps serving', async () => {
  const target = await startServer(
    [],
    createWebSocketUpgrade({
      mqtt: () => {
        throw new Error('handler bug');
      },
    }),
  );
  try {
    const ws = open(target, 'mqtt');
    expect(await closeOf(ws)).toBe(1011);
    const again = open(target, 'mqtt');
    expect(await closeOf(again)).toBe(1011);
  } finally {
    await target.close();
  }
});

describe('the Origin allow-list', () => {
  let listed: TestServer;
  const infos: Array<{ fields: Record<string, unknown>; message?: string }> = [];
  const recording: Logger = {
    info: (fields, message) => void infos.push({ fields: fields as Record<string, unknown>, ...(message ? { message } : {}) }),
    warn: () => undefined,
    error: () => undefined,
    debug: () => undefined,
    child: () => recording,
  };
  beforeAll(async () => {
    listed = await start({ allowedOrigins: ['https://app.example.com'], logger: recording });
  });
  afterAll(() => listed.close());

  function withOrigin(origin: string | undefined): WebSocket {
    return new WebSocket(`wss://localhost:${listed.port}/$iothub/websocket`, 'mqtt', { ca: listed.ca, ...(origin ? { origin } : {}) });
  }

  it('refuses a page origin not listed with 403 403001, before any handler', async () => {
    const reply = await refusal(withOrigin('https://evil.example.com'));
    expect(reply.status).toBe(403);
    expect(reply.body.errorCode).toBe(403001);
    expect(reply.headers['x-ms-error-code']).toBe('403001');
    expect(accepted).toHaveLength(0);
    expect(infos).toEqual([{ fields: expect.objectContaining({ origin: 'https://evil.example.com' }), message: 'websocket upgrade refused: origin not allowed' }]);
  });

  it('accepts a listed origin (compared case-insensitively) and an upgrade without Origin (the SDKs)', async () => {
    const page = withOrigin('https://APP.example.com');
    const sdk = withOrigin(undefined);
    await Promise.all([connected(page), connected(sdk)]);
    expect(accepted).toHaveLength(2);
    page.close();
    sdk.close();
  });

  it('lets any origin through when no list is configured', async () => {
    const ws = new WebSocket(`wss://localhost:${server.port}/$iothub/websocket`, 'mqtt', { ca: server.ca, origin: 'https://evil.example.com' });
    await connected(ws);
    ws.close();
  });
});
