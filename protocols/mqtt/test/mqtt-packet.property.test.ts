import fc from 'fast-check';
import { generate, parser, type Packet } from 'mqtt-packet';
import { plainParserBuffer, type AedesClient } from '../src/aedes';
import { guardParserInput, type MqttParser } from '../src/packet-size-guard';

/**
 * Seeded, bounded: the bytes of a device connection as the front-end consumes them, through the
 * packet size guard into mqtt-packet's parser (the one aedes uses), on its plain buffer list.
 */
const RUNS = { seed: 1, numRuns: 300 };
const MAX = 2048;

function chunked(data: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
  return [0, ...points].map((from, i) => data.subarray(from, [...points, data.length][i])).filter((chunk) => chunk.length > 0);
}

/** Guard then parser, as the front-end wires them; the packets parsed and whether anything failed. */
async function consume(chunks: Buffer[]): Promise<{ packets: Packet[]; failed: boolean }> {
  const mqtt = parser();
  guardParserInput(mqtt as unknown as MqttParser, MAX);
  plainParserBuffer({ _parser: mqtt } as unknown as AedesClient);
  const packets: Packet[] = [];
  let failed = false;
  mqtt.on('packet', (packet: Packet) => packets.push(packet));
  mqtt.on('error', () => (failed = true));
  for (const chunk of chunks) {
    if (!failed) mqtt.parse(chunk); // aedes stops reading once the parser failed
  }
  await new Promise((resolve) => setImmediate(resolve));
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

describe('guard and mqtt-packet parser together', () => {
  test('valid packets within the limit come out as they went in, however the stream is chunked', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(packetArb, { maxLength: 10 }), fc.array(fc.nat(), { maxLength: 12 }), async (sent, cuts) => {
        const { packets, failed } = await consume(chunked(Buffer.concat(sent.map((p) => generate(p))), cuts));
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

  test('arbitrary bytes never throw: packets, a parser error or a guard refusal, at most one packet per two bytes', async () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 800 }).map((b) => Buffer.from(b)),
      fc.tuple(fc.array(packetArb, { maxLength: 4 }), fc.nat(), fc.integer({ min: 0, max: 255 })).map(([packets, at, value]) => {
        const out = Buffer.concat(packets.map((p) => generate(p)));
        if (out.length > 0) out[at % out.length] = value;
        return out;
      }),
    );
    await fc.assert(
      fc.asyncProperty(bytes, fc.array(fc.nat(), { maxLength: 8 }), async (data, cuts) => {
        const { packets } = await consume(chunked(data, cuts));
        // A packet cannot be smaller than its two-byte fixed header.
        expect(packets.length).toBeLessThanOrEqual(Math.floor(data.length / 2));
      }),
      RUNS,
    );
  });
});
