import { Duplex, PassThrough } from 'node:stream';
import fc from 'fast-check';
import { createDpsMqttFrontEnd } from '../src';
import { readFrames, type FrameSink } from '../src/frame-codec';
import { encodeRemainingLength } from '@opendps/model';
import { chunked, firstProblem } from '../../../test/support/mqtt-stream';
import { ScriptedRegistration } from './helpers';

const RUNS = { seed: 1, numRuns: 300 };

/** A well-formed MQTT packet: any first byte, a minimal remaining length, that many body bytes. */
const packetArb = (maxBody: number) =>
  fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: maxBody })).map(([first, length]) =>
    Buffer.concat([Buffer.from([first, ...encodeRemainingLength(length)]), Buffer.alloc(length, 0x61)]),
  );

/** Feeds chunks to the frame reader as a connection does: the frames handed over, and whether it stopped with a problem. */
function throughReader(chunks: Buffer[], max: number): { frames: Buffer[]; left: Buffer | undefined; closed: boolean } {
  const frames: Buffer[] = [];
  const sink: FrameSink = { take: (frame) => (frames.push(Buffer.from(frame)), true) };
  let left: Buffer | undefined;
  for (const chunk of chunks) {
    const outcome = readFrames(left, chunk, max, sink);
    if (typeof outcome === 'string') return { frames, left: undefined, closed: true };
    left = outcome;
  }
  return { frames, left, closed: false };
}

describe('the frame reader and its packet size limit (MQTT fixed header)', () => {
  test('well-formed packets up to the limit come out whole, one frame each, however the stream is chunked', () => {
    fc.assert(
      fc.property(fc.array(packetArb(300), { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 10 }), (packets, cuts) => {
        const data = Buffer.concat(packets);
        const { frames, left, closed } = throughReader(chunked(data, cuts), 300);
        expect(closed).toBe(false);
        expect(left).toBeUndefined();
        expect(frames.map((frame) => frame.toString('hex'))).toEqual(packets.map((packet) => packet.toString('hex')));
      }),
      RUNS,
    );
  });

  test('arbitrary bytes: stopped exactly when the reference finds an oversized or malformed header, never throws', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.array(fc.nat(), { maxLength: 10 }), fc.integer({ min: 0, max: 400 }), (bytes, cuts, max) => {
        const data = Buffer.from(bytes);
        const problem = firstProblem(data, max);
        const { frames, left, closed } = throughReader(chunked(data, cuts), max);
        expect(closed).toBe(problem !== undefined);
        const handed = Buffer.concat(frames);
        // Frames before the bad header only; nothing of the frame it announces.
        if (problem !== undefined) expect(handed.length).toBeLessThan(problem);
        else expect(Buffer.concat([handed, left ?? Buffer.alloc(0)]).equals(data)).toBe(true);
      }),
      RUNS,
    );
  });

  test('a sink that stops taking: the rest is kept for later, in memory of its own', () => {
    const data = Buffer.from([0xc0, 0x00, 0xc0, 0x00, 0xe0]);
    const taken: Buffer[] = [];
    const left = readFrames(undefined, data, 10, { take: (frame) => taken.length === 0 && taken.push(frame) > 0 });
    expect(taken.map((frame) => frame.toString('hex'))).toEqual(['c000']);
    expect(Buffer.isBuffer(left) && left.toString('hex')).toBe('c000e0');
    // not a view into the chunk, nor into a slab of Node's buffer pool
    expect(Buffer.isBuffer(left) && left.buffer.byteLength).toBe(3);
  });
});

describe('the DPS MQTT front-end behind the limit', () => {
  test('an oversized header already buffered when the stream is handed over closes that stream, not the process', async () => {
    // A WebSocket upgrade whose head carries the frames delivers them before the front-end reads (found by pnpm fuzz).
    const frontEnd = createDpsMqttFrontEnd({ registration: new ScriptedRegistration(), maxPacketBytes: 10 });
    // An 'error' emitted with no listener throws out of a nextTick: in a server, that ends the process.
    const unhandled: string[] = [];
    const emit = jest.spyOn(PassThrough.prototype, 'emit').mockImplementation(function (this: PassThrough, event, ...args) {
      if (event === 'error' && this.listenerCount('error') === 0) unhandled.push(String(args[0]));
      return Duplex.prototype.emit.call(this, event, ...args);
    });
    try {
      const inner = new PassThrough();
      inner.write(Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f]));
      const closed = new Promise<void>((resolve) => inner.once('close', () => resolve()));
      // From a macrotask, as the upgrade callback runs.
      setImmediate(() => frontEnd.handleConnection(inner, { transport: 'mqtt-ws' }));
      await closed;
      await new Promise((resolve) => setImmediate(resolve)); // an unhandled 'error' would surface here
      expect(inner.destroyed).toBe(true);
      expect(unhandled).toEqual([]);
    } finally {
      emit.mockRestore();
      await frontEnd.close();
    }
  });
});
