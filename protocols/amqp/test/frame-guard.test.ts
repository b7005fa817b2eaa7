import { Duplex, PassThrough } from 'node:stream';
import { FrameGuard, readTransfer, type FrameLimits } from '../src';
import { AMQP_HEADER, SASL_HEADER } from './raw-client';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const frames: any = require('rhea/lib/frames.js');

/** `payloadBytes` of message: one Data section, 8 bytes of encoding around its binary. */
const section = (payloadBytes: number): Buffer => {
  const bytes = Buffer.alloc(payloadBytes, 0x61);
  bytes.set([0x00, 0x53, 0x75, 0xb0]);
  bytes.writeUInt32BE(payloadBytes - 8, 4);
  return bytes;
};
const transfer = (handle: number, more: boolean, payloadBytes: number, deliveryId = 0, payload = section(payloadBytes)): Buffer =>
  frames.write_frame(
    frames.amqp_frame(0, frames.transfer({ handle, delivery_id: deliveryId, delivery_tag: Buffer.from('t'), message_format: 0, more }), payload),
  );
const open = (): Buffer => frames.write_frame(frames.amqp_frame(0, frames.open({ container_id: 'c' })));

/** The guard over an in-memory socket: what it lets through, and whether it closed. */
function guarded(limits: FrameLimits = { maxFrameBytes: 4096, maxDeliveryBytes: 3000 }) {
  const socket = new PassThrough();
  const guard = new FrameGuard(socket, limits);
  const passed: Buffer[] = [];
  let error: Error | undefined;
  guard.on('data', (chunk: Buffer) => passed.push(chunk));
  guard.on('error', (caught: Error) => (error = caught));
  return {
    feed: async (...chunks: Buffer[]) => {
      for (const chunk of chunks) socket.write(chunk);
      await new Promise((resolve) => setImmediate(resolve));
    },
    passed: () => Buffer.concat(passed),
    error: () => error,
    destroyed: () => guard.destroyed,
  };
}

describe('readTransfer', () => {
  test('reads handle and more from rhea-encoded transfers; null for other performatives', () => {
    const body = (frame: Buffer) => frame.subarray(8);
    expect(readTransfer(body(transfer(0, true, 10)))).toEqual({ handle: 0, more: true });
    expect(readTransfer(body(transfer(7, false, 10, 300)))).toEqual({ handle: 7, more: false });
    expect(readTransfer(body(transfer(70_000, true, 10)))).toEqual({ handle: 70_000, more: true });
    expect(readTransfer(body(open()))).toBeNull();
    expect(readTransfer(Buffer.from([0x00, 0x53, 0x14, 0xc0, 0x05]))).toBeUndefined();
  });
});

describe('FrameGuard', () => {
  test('passes headers and frames whole, even when they arrive byte by byte', async () => {
    const input = Buffer.concat([SASL_HEADER, AMQP_HEADER, open(), transfer(0, false, 100)]);
    const guard = guarded();
    await guard.feed(...[...input].map((byte) => Buffer.from([byte])));
    expect(guard.passed().equals(input)).toBe(true);
    expect(guard.destroyed()).toBe(false);
  });

  test('a multi-frame delivery is summed per link and refused past the limit; a finished one resets', async () => {
    const fine = guarded();
    await fine.feed(AMQP_HEADER, transfer(0, true, 1000), transfer(1, true, 1000), transfer(0, false, 1000), transfer(0, true, 1000), transfer(0, false, 1000));
    expect(fine.destroyed()).toBe(false);

    const tooLarge = guarded();
    await tooLarge.feed(AMQP_HEADER, transfer(0, true, 1000), transfer(0, true, 1000), transfer(0, true, 1000));
    expect(tooLarge.error()?.message).toMatch(/delivery of more than 3000 bytes/);
    expect(tooLarge.passed().length).toBeLessThan(8 + 3 * 1000);
  });

  test('refuses an oversized or undersized frame, a bad data offset and an unknown protocol header', async () => {
    const cases: Array<[Buffer, RegExp]> = [
      [Buffer.from([0, 0, 0x20, 0, 2, 0, 0, 0]), /exceeds 4096/],
      [Buffer.from([0, 0, 0, 4]), /malformed frame size/],
      [Buffer.from([0, 0, 0, 8, 1, 0, 0, 0]), /data offset/],
      [Buffer.from('AMQP\x01\x01\x00\x0a', 'latin1'), /protocol header/],
    ];
    for (const [bytes, problem] of cases) {
      const guard = guarded();
      await guard.feed(AMQP_HEADER, bytes);
      expect(guard.error()?.message).toMatch(problem);
      expect(guard.passed().equals(AMQP_HEADER)).toBe(true);
    }
  });
});

describe('FrameGuard: the encoding of each frame', () => {
  const body = (hex: string): Buffer => {
    const bytes = Buffer.from(hex.replace(/\s/g, ''), 'hex');
    return Buffer.concat([Buffer.from([0, 0, 0, 8 + bytes.length, 2, 0, 0, 0]), bytes]);
  };

  test('a performative rhea would trust is refused before it passes; a good one passes', async () => {
    const guard = guarded();
    await guard.feed(AMQP_HEADER, open(), body('005310 d0 00000006 ffffffff a100'));
    expect(guard.error()).toMatchObject({ condition: 'amqp:decode-error', message: expect.stringMatching(/more elements than bytes/) });
    expect(guard.passed().equals(Buffer.concat([AMQP_HEADER, open()]))).toBe(true);
  });

  test('a message is checked whole on the last frame of its delivery, its frames passed until then', async () => {
    // an array32 of 2^32-1 nulls, split over two frames
    const message = Buffer.from('005377 f0 00000005 ffffffff 40'.replace(/\s/g, ''), 'hex');
    const guard = guarded();
    await guard.feed(AMQP_HEADER, transfer(0, true, 0, 0, message.subarray(0, 6)));
    expect(guard.destroyed()).toBe(false);
    await guard.feed(transfer(0, false, 0, 0, message.subarray(6)));
    expect(guard.error()).toMatchObject({ condition: 'amqp:decode-error', message: expect.stringMatching(/^message: /) });

    const fine = guarded();
    await fine.feed(AMQP_HEADER, transfer(0, true, 100), transfer(0, false, 100), transfer(0, false, 50));
    expect(fine.destroyed()).toBe(false);
  });

  test('bytes after a performative other than transfer, an unknown frame type and an undescribed performative are refused', async () => {
    const cases: Array<[Buffer, RegExp]> = [
      [body(`${open().subarray(8).toString('hex')} 40`), /bytes after the performative/],
      [Buffer.from([0, 0, 0, 9, 2, 7, 0, 0, 0x40]), /unknown frame type 7/],
      [body('45'), /not a described value/],
    ];
    for (const [bytes, problem] of cases) {
      const guard = guarded();
      await guard.feed(AMQP_HEADER, bytes);
      expect(guard.error()?.message).toMatch(problem);
    }
  });

  test('a connection opens at most maxSessions sessions and maxLinks links', async () => {
    const begin = frames.write_frame(frames.amqp_frame(0, frames.begin({ next_outgoing_id: 0, incoming_window: 1, outgoing_window: 1 })));
    const attach = (handle: number): Buffer => frames.write_frame(frames.amqp_frame(0, frames.attach({ name: `l${handle}`, handle, role: false })));
    const sessions = guarded({ maxFrameBytes: 4096, maxDeliveryBytes: 3000, maxSessions: 2 });
    await sessions.feed(AMQP_HEADER, open(), begin, begin);
    expect(sessions.destroyed()).toBe(false);
    await sessions.feed(begin);
    expect(sessions.error()).toMatchObject({ condition: 'amqp:resource-limit-exceeded', message: 'more than 2 sessions' });

    const links = guarded({ maxFrameBytes: 4096, maxDeliveryBytes: 3000, maxLinks: 3 });
    await links.feed(AMQP_HEADER, open(), begin, attach(0), attach(1), attach(2));
    expect(links.destroyed()).toBe(false);
    await links.feed(attach(3));
    expect(links.error()).toMatchObject({ condition: 'amqp:resource-limit-exceeded', message: 'more than 3 links' });
  });
});

describe('FrameGuard: the first protocol header (AMQP 1.0 §2.2)', () => {
  /** A socket whose writes are kept apart from what the peer sends. */
  function socketPair() {
    const written: Buffer[] = [];
    const socket = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, done) {
        written.push(chunk);
        done();
      },
    });
    const guard = new FrameGuard(socket, { maxFrameBytes: 4096, maxDeliveryBytes: 3000 });
    let error: Error | undefined;
    guard.on('error', (caught: Error) => (error = caught));
    guard.resume();
    const closed = new Promise<void>((resolve) => guard.once('close', () => resolve()));
    return { socket, written: () => Buffer.concat(written), error: () => error, closed };
  }

  test.each([
    ['an unsupported AMQP version', Buffer.from('AMQP\x00\x00\x09\x01', 'latin1'), /protocol header/],
    ['bytes that are not AMQP', Buffer.from('GET / HTTP/1.1\r\n\r\n'), /expected an AMQP protocol header/],
    ['a frame before any header', Buffer.from([0, 0, 0, 8, 2, 0, 0, 0]), /expected an AMQP protocol header/],
  ])('%s is answered with the supported SASL header, then the connection closes', async (_name, bytes, problem) => {
    const pair = socketPair();
    pair.socket.push(bytes);
    await pair.closed;
    expect(pair.written().equals(SASL_HEADER)).toBe(true);
    expect(pair.error()?.message).toMatch(problem);
  });

  test('a good first header passes and a later bad unit closes without an answer', async () => {
    const pair = socketPair();
    pair.socket.push(Buffer.concat([AMQP_HEADER, Buffer.from([0, 0, 0, 4])]));
    await pair.closed;
    expect(pair.written().length).toBe(0);
    expect(pair.error()?.message).toMatch(/malformed frame size/);
  });
});
