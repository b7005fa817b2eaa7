import fc from 'fast-check';
import { generate, type Packet } from 'mqtt-packet';
import { decodeFrame, readFrames } from '../src/frame-codec';
import { chunked } from '../../../test/support/mqtt-stream';

/**
 * Seeded, bounded: the bytes of a device connection as the front-end consumes them, cut into frames
 * under the packet size limit and each decoded by the shared mqtt-packet parser.
 */
const RUNS = { seed: 1, numRuns: 300 };
const MAX = 2048;

/** Frames then decoding, as a connection does; the packets decoded and whether anything failed. */
function consume(chunks: Buffer[]): { packets: Packet[]; failed: boolean } {
  const packets: Packet[] = [];
  let failed = false;
  const sink = {
    take(frame: Buffer): boolean {
      if (failed) return false;
      const packet = decodeFrame(frame);
      if (packet instanceof Error) failed = true;
      else packets.push(packet);
      return true;
    },
  };
  let left: Buffer | undefined;
  for (const chunk of chunks) {
    if (failed) break; // a connection stops reading once a frame failed
    const outcome = readFrames(left, chunk, MAX, sink);
    if (typeof outcome === 'string') failed = true;
    else left = outcome;
  }
  return { packets, failed };
}

const topic = fc.stringMatching(/^[a-z$/#+0-9]{1,40}$/);
const packetArb: fc.Arbitrary<Packet> = fc.oneof(
  fc.record({
    cmd: fc.constant('connect' as const),
    protocolId: fc.constant('MQTT' as const),
    protocolVersion: fc.constant(4 as const),
    clean: fc.boolean(),
    keepalive: fc.integer({ min: 0, max: 65535 }),
    clientId: fc.stringMatching(/^[a-z0-9-]{1,30}$/),
    username: fc.string({ maxLength: 100 }),
    password: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
  }),
  fc.record({
    cmd: fc.constant('publish' as const),
    topic,
    payload: fc.uint8Array({ maxLength: 1500 }).map((b) => Buffer.from(b)),
    qos: fc.constantFrom(0 as const, 1 as const),
    messageId: fc.integer({ min: 1, max: 65535 }),
    retain: fc.constant(false),
    dup: fc.constant(false),
  }).map((p) => (p.qos === 0 ? { ...p, messageId: undefined } : p)),
  fc.record({ cmd: fc.constant('subscribe' as const), messageId: fc.integer({ min: 1, max: 65535 }), subscriptions: fc.array(fc.record({ topic, qos: fc.constantFrom(0 as const, 1 as const) }), { minLength: 1, maxLength: 5 }) }),
  fc.record({ cmd: fc.constant('unsubscribe' as const), messageId: fc.integer({ min: 1, max: 65535 }), unsubscriptions: fc.array(topic, { minLength: 1, maxLength: 5 }) }),
  fc.record({ cmd: fc.constant('puback' as const), messageId: fc.integer({ min: 1, max: 65535 }) }),
  fc.constantFrom<Packet>({ cmd: 'pingreq' }, { cmd: 'disconnect' }),
);

describe('frame reader and the shared mqtt-packet parser together', () => {
  test('valid packets within the limit come out as they went in, however the stream is chunked', () => {
    fc.assert(
      fc.property(fc.array(packetArb, { maxLength: 10 }), fc.array(fc.nat(), { maxLength: 12 }), (sent, cuts) => {
        const { packets, failed } = consume(chunked(Buffer.concat(sent.map((p) => generate(p))), cuts));
        expect(failed).toBe(false);
        expect(packets.map((p) => p.cmd)).toEqual(sent.map((p) => p.cmd));
        packets.forEach((packet, i) => {
          const original = sent[i] as Packet;
          if (packet.cmd === 'publish' && original.cmd === 'publish') {
            expect([packet.topic, Buffer.from(packet.payload).toString('hex')]).toEqual([original.topic, Buffer.from(original.payload).toString('hex')]);
          }
          if (packet.cmd === 'connect' && original.cmd === 'connect') expect([packet.clientId, packet.username]).toEqual([original.clientId, original.username]);
        });
      }),
      RUNS,
    );
  });

  test('arbitrary bytes never throw: packets, a parser error or a size refusal, at most one packet per two bytes', () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 800 }).map((b) => Buffer.from(b)),
      fc.tuple(fc.array(packetArb, { maxLength: 4 }), fc.nat(), fc.integer({ min: 0, max: 255 })).map(([packets, at, value]) => {
        const out = Buffer.concat(packets.map((p) => generate(p)));
        if (out.length > 0) out[at % out.length] = value;
        return out;
      }),
    );
    fc.assert(
      fc.property(bytes, fc.array(fc.nat(), { maxLength: 8 }), (data, cuts) => {
        const { packets } = consume(chunked(data, cuts));
        // A packet cannot be smaller than its two-byte fixed header.
        expect(packets.length).toBeLessThanOrEqual(Math.floor(data.length / 2));
      }),
      RUNS,
    );
  });
});
