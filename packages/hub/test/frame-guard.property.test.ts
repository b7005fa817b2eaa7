import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import fc from 'fast-check';
import { encodeRemainingLength } from '@opendps/model';
import { chunked, firstProblem } from '../../../test/support/mqtt-stream';
import { guardPacketSize } from '../src/frame-guard';

/** Seeded, bounded: the hub guard sees every byte a device sends before aedes parses it. */
const RUNS = { seed: 1, numRuns: 500 };

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
        expect(oversizeCalls(chunked(data, cuts), max)).toBe(firstProblem(data, max) === undefined ? 0 : 1);
      }),
      RUNS,
    );
  });

  test('well-formed packets up to the limit are never reported', () => {
    const packet = fc
      .tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 300 }))
      .map(([first, length]) => Buffer.concat([Buffer.from([first, ...encodeRemainingLength(length)]), Buffer.alloc(length)]));
    fc.assert(fc.property(fc.array(packet, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 10 }), (packets, cuts) => expect(oversizeCalls(chunked(Buffer.concat(packets), cuts), 300)).toBe(0)), RUNS);
  });
});
