import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import fc from 'fast-check';
import { guardPacketSize } from '../src/frame-guard';

/** Seeded, bounded: the hub guard sees every byte a device sends before aedes parses it. */
const RUNS = { seed: 1, numRuns: 500 };

/** The reference: whether the stream holds a header announcing more than `max`, or one of five length bytes. */
function hasProblem(data: Buffer, max: number): boolean {
  let at = 0;
  while (at < data.length) {
    at += 1;
    let length = 0;
    let multiplier = 1;
    for (let n = 1; ; n++) {
      if (at >= data.length) return false;
      const byte = data[at++] as number;
      length += (byte & 0x7f) * multiplier;
      multiplier *= 128;
      if (!(byte & 0x80)) break;
      if (n === 4) return true;
    }
    if (length > max) return true;
    at += length;
  }
  return false;
}

function chunked(data: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const point of [...points, data.length]) {
    if (point > from) chunks.push(data.subarray(from, point));
    from = point;
  }
  return chunks;
}

function encodeLength(length: number): number[] {
  const bytes: number[] = [];
  do {
    let byte = length % 128;
    length = Math.floor(length / 128);
    if (length > 0) byte |= 0x80;
    bytes.push(byte);
  } while (length > 0);
  return bytes;
}

/** How often the guard called onOversize for these chunks (it observes 'data' only). */
function oversizeCalls(chunks: Buffer[], max: number): number {
  const socket = new EventEmitter();
  let calls = 0;
  guardPacketSize(socket as unknown as Socket, max, () => (calls += 1));
  for (const chunk of chunks) {
    if (calls > 0) break; // the hub destroys the socket at the first call
    socket.emit('data', chunk);
  }
  return calls;
}

describe('guardPacketSize (built-in hub)', () => {
  test('arbitrary bytes in arbitrary chunks: oversize reported exactly when the reference finds it, and once', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.array(fc.nat(), { maxLength: 10 }), fc.integer({ min: 0, max: 400 }), (bytes, cuts, max) => {
        const data = Buffer.from(bytes);
        expect(oversizeCalls(chunked(data, cuts), max)).toBe(hasProblem(data, max) ? 1 : 0);
      }),
      RUNS,
    );
  });

  test('well-formed packets up to the limit are never reported', () => {
    const packet = fc
      .tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 300 }))
      .map(([first, length]) => Buffer.concat([Buffer.from([first, ...encodeLength(length)]), Buffer.alloc(length)]));
    fc.assert(fc.property(fc.array(packet, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 10 }), (packets, cuts) => expect(oversizeCalls(chunked(Buffer.concat(packets), cuts), 300)).toBe(0)), RUNS);
  });
});
