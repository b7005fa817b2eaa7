import { generate, parser, type Packet } from 'mqtt-packet';

/**
 * The frame codec between the socket and the channel: splits a byte stream into whole MQTT control
 * packets, refusing one whose fixed header announces more than the limit before its body is read
 * (an oversized frame costs its connection, never the server's memory), and decodes each whole
 * frame with mqtt-packet. A connection holds no codec state but the bytes of an unfinished frame.
 */

/** What `frameEnd` says when the frame at `at` is not complete yet. */
export const MORE = -1;

/**
 * The remaining length [MQTT-2.2.3] of the frame starting at `at`: its value and where the body
 * starts, MORE when the bytes stop first, or undefined when it is malformed (over four bytes).
 */
export function remainingLength(bytes: Buffer, at: number): { length: number; bodyAt: number } | typeof MORE | undefined {
  let length = 0;
  for (let count = 0, multiplier = 1; ; count++, multiplier *= 128) {
    if (count === 4) return undefined;
    const index = at + 1 + count;
    if (index >= bytes.length) return MORE;
    const byte = bytes[index] as number;
    length += (byte & 0x7f) * multiplier;
    if (!(byte & 0x80)) return { length, bodyAt: index + 1 };
  }
}

/**
 * Where the frame that starts at `at` ends: an index, MORE, or a problem for which the connection
 * closes (malformed remaining length, or more than `maxPacketBytes` announced).
 */
export function frameEnd(bytes: Buffer, at: number, maxPacketBytes: number): number | string {
  const header = remainingLength(bytes, at);
  if (header === undefined) return 'malformed remaining length';
  if (header === MORE) return MORE;
  if (header.length > maxPacketBytes) return `packet of ${header.length} bytes exceeds ${maxPacketBytes}`;
  const end = header.bodyAt + header.length;
  return end <= bytes.length ? end : MORE;
}

/** Where whole frames go: `take` says whether the frame was taken (false: keep it, and stop). */
export interface FrameSink {
  take(frame: Buffer): boolean;
}

/**
 * Cuts the whole frames off `pending` + `chunk` and hands them to `sink` in order, while it takes
 * them. Returns the bytes left for later (a partial frame, or frames not taken yet), in a buffer of
 * their own, or a problem (a string) for which the connection closes.
 */
export function readFrames(pending: Buffer | undefined, chunk: Buffer, maxPacketBytes: number, sink: FrameSink): Buffer | undefined | string {
  const bytes = pending ? Buffer.concat([pending, chunk]) : chunk;
  let at = 0;
  while (at < bytes.length) {
    const end = frameEnd(bytes, at, maxPacketBytes);
    if (typeof end === 'string') return end;
    if (end === MORE || !sink.take(bytes.subarray(at, end))) break;
    at = end;
  }
  if (at >= bytes.length) return undefined;
  // Its own memory: neither the chunk nor a slab of Node's shared buffer pool stays alive for it.
  const rest = Buffer.allocUnsafeSlow(bytes.length - at);
  bytes.copy(rest, 0, at);
  return rest;
}

/**
 * One mqtt-packet parser for every connection: it is handed whole frames only, so it finishes each
 * one (a packet or an error) before the next call and carries nothing from one frame to the next.
 * Only MQTT 3.1 and 3.1.1 are served (a 5 CONNECT is parsed to be refused), so it always parses
 * 3.1.1 packets; its settings would otherwise follow the last CONNECT it parsed.
 */
const V311 = Object.freeze({ protocolVersion: 4 });
type SharedParser = ReturnType<typeof parser> & { settings: object };
let shared = newParser();
let decoded: Packet | Error | undefined;

function newParser(): SharedParser {
  const created = parser() as SharedParser;
  created.on('packet', (packet: Packet) => (decoded = packet));
  created.on('error', (error: Error) => (decoded = error));
  return created;
}

/** Decodes one whole frame (as `frameEnd` delimits it): its packet, or why it is malformed. */
export function decodeFrame(frame: Buffer): Packet | Error {
  decoded = undefined;
  shared.settings = V311;
  try {
    shared.parse(frame);
  } catch (thrown) {
    decoded = thrown instanceof Error ? thrown : new Error(String(thrown));
  }
  const result = decoded ?? new Error('malformed packet');
  decoded = undefined;
  // A frame that did not come out as one packet may have left the parser mid-way: start afresh.
  if (result instanceof Error) shared = newParser();
  return result;
}

/** Packets the server sends, each as one buffer: one write, one TLS record, one WebSocket message. */
export function encode(packet: Packet): Buffer {
  return generate(packet);
}

/** CONNACK with a return code (MQTT 3.1.1 §3.2.2.3), session present 0 [MQTT-3.2.2-1]. */
export function connack(returnCode: number): Buffer {
  return Buffer.from([0x20, 0x02, 0x00, returnCode]);
}

export function puback(messageId: number): Buffer {
  return Buffer.from([0x40, 0x02, messageId >> 8, messageId & 0xff]);
}

export function unsuback(messageId: number): Buffer {
  return Buffer.from([0xb0, 0x02, messageId >> 8, messageId & 0xff]);
}

export const PINGRESP: Buffer = Buffer.from([0xd0, 0x00]);
