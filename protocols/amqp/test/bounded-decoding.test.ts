import { createServer, type Server } from 'node:https';
import type { Logger } from '@opendps/model';
import WebSocket, { WebSocketServer } from 'ws';
import { addressFor, attachLinks, connectClient, plain, registerMessage, sasFor, ScriptedRegistration, startFrontEnd, testPki, type Running } from './helpers';
import { AMQP_HEADER, RawClient, SASL_HEADER } from './raw-client';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const frames: any = require('rhea/lib/frames.js');

/**
 * The front-end under frames whose counts, sizes or nesting rhea would trust (issue 8): each
 * costs its own connection, memory stays flat, and a real device registers afterwards.
 */

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s/g, ''), 'hex');
const u32 = (value: number): string => value.toString(16).padStart(8, '0');
/** A frame around `body`: 8-byte header, data offset 2, `type` 1 (SASL) or 0 (AMQP) on channel 0. */
function frame(type: number, body: Buffer): Buffer {
  const header = Buffer.from([0, 0, 0, 0, 2, type, 0, 0]);
  header.writeUInt32BE(8 + body.length, 0);
  return Buffer.concat([header, body]);
}
const saslInit = (value: string | Buffer): Buffer => frame(1, Buffer.concat([hex('005341'), typeof value === 'string' ? hex(value) : value]));
const open = (value: string): Buffer => frame(0, hex(`005310 ${value}`));

function deepLists(depth: number): Buffer {
  const bytes = Buffer.alloc(depth * 9 + 1, 0x40);
  for (let level = 0; level < depth; level += 1) {
    bytes[level * 9] = 0xd0;
    bytes.writeUInt32BE((depth - level) * 9 - 4, level * 9 + 1);
    bytes.writeUInt32BE(1, level * 9 + 5);
  }
  return bytes;
}

/** A plain AMQP connection with a link attached, then a transfer whose message is `payload`. */
function transferAfterAttach(payload: Buffer): Buffer {
  const address = addressFor('attacker');
  return Buffer.concat([
    AMQP_HEADER,
    frames.write_frame(frames.amqp_frame(0, frames.open({ container_id: 'attacker' }))),
    frames.write_frame(frames.amqp_frame(0, frames.begin({ next_outgoing_id: 0, incoming_window: 100, outgoing_window: 100 }))),
    frames.write_frame(frames.amqp_frame(0, frames.attach({ name: 'l', handle: 0, role: false, source: {}, target: { address } }))),
    frames.write_frame(frames.amqp_frame(0, frames.transfer({ handle: 0, delivery_id: 0, delivery_tag: Buffer.from('t'), message_format: 0 }), payload)),
  ]);
}

const ATTACKS: Array<[string, Buffer]> = [
  ['the reported sasl-init: array32 of 2^32-1 nulls', Buffer.concat([SASL_HEADER, hex('0000001502010000005341f000000008ffffffff40')])],
  ['array32 of 2^32-1 nulls, size consistent', Buffer.concat([SASL_HEADER, saslInit(`f0 ${u32(5)} ffffffff 40`)])],
  ['array8 of 255 true', Buffer.concat([SASL_HEADER, saslInit('e0 02 ff 41')])],
  ['list8 of 255 elements', Buffer.concat([SASL_HEADER, saslInit('c0 03 ff 40 40')])],
  ['list32 of 2^32-1 elements', Buffer.concat([SASL_HEADER, saslInit(`d0 ${u32(6)} ffffffff a3 00`)])],
  ['map8 of 254 entries', Buffer.concat([SASL_HEADER, saslInit('c1 03 fe 40 40')])],
  ['map32 of 2^32-2 entries', Buffer.concat([SASL_HEADER, saslInit(`d1 ${u32(6)} fffffffe 40 40`)])],
  ['a list holding an array32 of 2^32-1 uint0', Buffer.concat([SASL_HEADER, saslInit(`c0 0b 01 f0 ${u32(5)} ffffffff 43`)])],
  ['60,000 nested descriptors', Buffer.concat([SASL_HEADER, saslInit(Buffer.concat([Buffer.alloc(60_000, 0), hex('40')]))])],
  ['6,000 nested list32s', Buffer.concat([SASL_HEADER, saslInit(deepLists(6000))])],
  ['an open before SASL: list32 of 2^32-1 fields', Buffer.concat([AMQP_HEADER, open(`d0 ${u32(6)} ffffffff a1 00`)])],
  ['an open before SASL: array32 of 2^32-1 nulls as its container id', Buffer.concat([AMQP_HEADER, open(`c0 0b 01 f0 ${u32(5)} ffffffff 40`)])],
  [
    'a transfer whose delivery-id is 60,000 nested descriptors',
    Buffer.concat([AMQP_HEADER, frame(0, Buffer.concat([hex(`005314 d0 ${u32(60_008)} 00000002 43`), Buffer.alloc(60_000, 0), hex('43')]))]),
  ],
  ['a message holding an array32 of 2^32-1 nulls', transferAfterAttach(hex(`005377 f0 ${u32(5)} ffffffff 40`))],
  ['a message nested 6,000 lists deep', transferAfterAttach(Buffer.concat([hex('005377'), deepLists(6000)]))],
];

const MB = 1024 * 1024;

/** Records the conditions of refused frames, as the front-end logs them. */
function refusalLog(): { logger: Logger; conditions: string[] } {
  const conditions: string[] = [];
  const logger: Logger = {
    info: (fields: { condition?: string }) => {
      if (fields.condition) conditions.push(fields.condition);
    },
    warn: () => undefined,
    error: () => undefined,
    debug: () => undefined,
    child: () => logger,
  };
  return { logger, conditions };
}
/** Heap and RSS growth across `attack`, after a collection when the runtime exposes one. */
async function growth(attack: () => Promise<void>): Promise<{ heap: number; rss: number }> {
  const collect = (globalThis as { gc?: () => void }).gc;
  collect?.();
  const before = process.memoryUsage();
  await attack();
  collect?.();
  const after = process.memoryUsage();
  return { heap: after.heapUsed - before.heapUsed, rss: after.rss - before.rss };
}

describe('bounded decoding over AMQP/TLS', () => {
  let running: Running;
  const log = refusalLog();
  beforeAll(async () => {
    running = await startFrontEnd({ registration: new ScriptedRegistration(), logger: log.logger });
  });
  afterAll(() => running.close());

  test.each(ATTACKS)('%s: that connection is closed, memory stays flat', async (_name, bytes) => {
    const used = await growth(async () => {
      const raw = await RawClient.open(running.port);
      raw.write(bytes);
      await raw.closed();
    });
    expect(used.heap).toBeLessThan(64 * MB);
    expect(used.rss).toBeLessThan(64 * MB);
    // refused by the guard, before rhea saw the frame
    expect(log.conditions.splice(0)).toEqual(['amqp:decode-error']);
  });

  test.each([
    ['60,000 sessions', () => frames.begin({ next_outgoing_id: 0, incoming_window: 10, outgoing_window: 10 }), (index: number) => index],
    ['60,000 links', (index: number) => frames.attach({ name: `l${index}`, handle: index, role: false, source: {}, target: { address: 'x' } }), () => 0],
  ])('after SASL, %s: refused past the limit, memory stays flat', async (_name, performative, channel) => {
    const flood = [AMQP_HEADER, frames.write_frame(frames.amqp_frame(0, frames.open({ container_id: 'flood' })))];
    flood.push(frames.write_frame(frames.amqp_frame(0, frames.begin({ next_outgoing_id: 0, incoming_window: 10, outgoing_window: 10 }))));
    for (let index = 1; index < 60_000; index += 1) flood.push(frames.write_frame(frames.amqp_frame(channel(index), performative(index))));
    const bytes = Buffer.concat(flood);
    const used = await growth(async () => {
      const raw = await RawClient.open(running.port);
      raw.write(SASL_HEADER);
      raw.init('PLAIN', Buffer.from(`\0${addressFor('flood')}\0${sasFor('flood')}`));
      await raw.next(); // mechanisms
      expect((await raw.next()).performative.code).toBe(0);
      raw.write(bytes);
      await raw.closed();
    });
    expect(used.heap).toBeLessThan(64 * MB);
    expect(log.conditions.splice(0)).toEqual(['amqp:resource-limit-exceeded']);
  });

  test('a device still registers afterwards', async () => {
    const { connection, error } = await connectClient(running.port, plain('after-attack', sasFor('after-attack')));
    expect(error).toBeUndefined();
    const links = await attachLinks(connection, addressFor('after-attack'));
    expect((await links.request(registerMessage('after-attack', 'c-1'))).outcome).toBe('accepted');
    links.close();
  });
});

describe('bounded decoding over AMQP/WebSockets', () => {
  let running: Running;
  let server: Server;
  let port: number;
  const log = refusalLog();

  beforeAll(async () => {
    const { server: certificate } = testPki();
    running = await startFrontEnd({ registration: new ScriptedRegistration(), logger: log.logger });
    const wss = new WebSocketServer({ noServer: true, handleProtocols: () => 'AMQPWSB10' });
    server = createServer({ cert: certificate.certificatePem, key: certificate.privateKeyPem });
    server.on('upgrade', (request, socket, head) => wss.handleUpgrade(request, socket, head, (ws) => running.frontEnd.handleWebSocket(ws, request)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    port = typeof address === 'object' && address ? address.port : 0;
  });

  afterAll(async () => {
    await running.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  /** Sends `bytes` as binary messages of at most 16 KiB (frames need not align with them) and waits for the close. */
  function attack(bytes: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`wss://localhost:${port}/$iothub/websocket`, 'AMQPWSB10', { ca: testPki().ca.certificatePem });
      ws.on('open', () => {
        for (let at = 0; at < bytes.length; at += 16 * 1024) ws.send(bytes.subarray(at, at + 16 * 1024));
      });
      ws.on('error', reject);
      ws.on('close', () => resolve());
    });
  }

  test.each(ATTACKS)('%s: that connection is closed, memory stays flat', async (_name, bytes) => {
    const used = await growth(() => attack(bytes));
    expect(used.heap).toBeLessThan(64 * MB);
    expect(used.rss).toBeLessThan(64 * MB);
    expect(log.conditions.splice(0)).toEqual(['amqp:decode-error']);
  });

  test('the same front-end still serves a device over TLS afterwards', async () => {
    const { connection, error } = await connectClient(running.port, plain('after-ws-attack'));
    expect(error).toBeUndefined();
    const links = await attachLinks(connection, addressFor('after-ws-attack'));
    expect((await links.request(registerMessage('after-ws-attack', 'c-2'))).outcome).toBe('accepted');
    links.close();
  });
});
