import { mutate, shuffleFrames } from '../mutate';
import type { Rng } from '../rng';
import type { CorpusContext } from './context';

/** AMQP 1.0 encoded by hand (enough of the type system for DPS traffic, docs/device-wire.md §3). */
export type AmqpValue = Buffer; // already encoded

export const NULL = Buffer.from([0x40]);

export function uint(value: number): Buffer {
  const out = Buffer.alloc(5);
  out[0] = 0x70;
  out.writeUInt32BE(value >>> 0, 1);
  return out;
}

export function ulongSmall(value: number): Buffer {
  return Buffer.from([0x53, value & 0xff]);
}

export function bool(value: boolean): Buffer {
  return Buffer.from([value ? 0x41 : 0x42]);
}

function variable(code8: number, code32: number, bytes: Buffer): Buffer {
  if (bytes.length < 256) return Buffer.concat([Buffer.from([code8, bytes.length]), bytes]);
  const head = Buffer.alloc(5);
  head[0] = code32;
  head.writeUInt32BE(bytes.length, 1);
  return Buffer.concat([head, bytes]);
}

export const str = (text: string) => variable(0xa1, 0xb1, Buffer.from(text, 'utf8'));
export const sym = (text: string) => variable(0xa3, 0xb3, Buffer.from(text, 'ascii'));
export const bin = (bytes: Buffer) => variable(0xa0, 0xb0, bytes);

export function list(items: Buffer[]): Buffer {
  const body = Buffer.concat(items);
  const head = Buffer.alloc(9);
  head[0] = 0xd0;
  head.writeUInt32BE(body.length + 4, 1);
  head.writeUInt32BE(items.length, 5);
  return Buffer.concat([head, body]);
}

export function map(entries: Array<[Buffer, Buffer]>): Buffer {
  const body = Buffer.concat(entries.flat());
  const head = Buffer.alloc(9);
  head[0] = 0xd1;
  head.writeUInt32BE(body.length + 4, 1);
  head.writeUInt32BE(entries.length * 2, 5);
  return Buffer.concat([head, body]);
}

export function described(descriptor: number, value: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x00]), ulongSmall(descriptor), value]);
}

/** A frame: size, data offset 2, type (0 AMQP, 1 SASL), channel, then the performative and payload. */
export function frame(type: number, channel: number, body: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(body.length + 8, 0);
  head[4] = 2;
  head[5] = type;
  head.writeUInt16BE(channel, 6);
  return Buffer.concat([head, body]);
}

export const SASL_HEADER = Buffer.from('414d515003010000', 'hex');
export const AMQP_HEADER = Buffer.from('414d515000010000', 'hex');

/**
 * A sasl-init whose list32 announces 0xffffffff fields in 8 bytes: rhea allocates without bound
 * while decoding it (issue 8). Kept verbatim in the corpus so a run proves the guard holds.
 */
export const SASL_INIT_HUGE_COUNT = Buffer.from('0000001502010000005341f000000008ffffffff40', 'hex');

/** Compounds whose count or size fields promise far more than the frame carries. */
function hugeCompound(rng: Rng): Buffer {
  const code = rng.pick([0xc0, 0xc1, 0xe0, 0xd0, 0xd1, 0xf0]);
  const wide = code >= 0xd0;
  const size = rng.pick(wide ? [0, 4, 8, 0xffffffff, 0x7fffffff] : [0, 1, 0xff]);
  const count = rng.pick(wide ? [0xffffffff, 0x7fffffff, 0x00ffffff, 0x10000] : [0xff, 0xfe]);
  const head = Buffer.alloc(wide ? 9 : 3);
  head[0] = code;
  if (wide) {
    head.writeUInt32BE(size >>> 0, 1);
    head.writeUInt32BE(count >>> 0, 5);
  } else {
    head[1] = size;
    head[2] = count;
  }
  // arrays carry an element constructor after the count
  const element = code === 0xe0 || code === 0xf0 ? Buffer.from([rng.pick([0x40, 0x52, 0xa1, 0xd0, 0x45])]) : Buffer.alloc(0);
  return Buffer.concat([head, element, rng.chance(0.5) ? NULL : Buffer.alloc(0)]);
}

function saslInit(mechanism: string, response: Buffer): Buffer {
  return frame(1, 0, described(0x41, list([sym(mechanism), bin(response), str('localhost')])));
}

/** SASL, open, begin, attach, transfer of a DPS register request (docs/device-wire.md §3). */
export function amqpSequence(ctx: CorpusContext, rng: Rng): Buffer[] {
  const address = `${ctx.idScope}/registrations/${ctx.registrationId}`;
  const plain = Buffer.concat([Buffer.from([0]), Buffer.from(`${address}`), Buffer.from([0]), Buffer.from(ctx.deviceToken)]);
  const frames = [
    SASL_HEADER,
    saslInit(rng.pick(['PLAIN', 'ANONYMOUS', 'MSSBCBS', 'X']), plain),
    AMQP_HEADER,
    frame(0, 0, described(0x10, list([str('fuzz'), str('localhost'), uint(65536), Buffer.from([0x60, 0x00, 0x10])]))),
    frame(0, 0, described(0x11, list([NULL, uint(0), uint(1000), uint(1000)]))),
    frame(0, 0, described(0x12, list([str('sender'), uint(0), bool(false), NULL, NULL, described(0x28, list([str(address)])), described(0x29, list([str(address)]))]))),
    frame(0, 0, described(0x12, list([str('receiver'), uint(1), bool(true), NULL, NULL, described(0x28, list([str(address)])), described(0x29, list([str(address)]))]))),
    frame(0, 0, described(0x13, list([uint(0), uint(1000), uint(0), uint(1000), uint(1), uint(0), uint(100)]))),
  ];
  for (let n = rng.int(20); n > 0; n--) {
    const payload = Buffer.concat([
      described(0x73, list([str(`${rng.int(1e6)}`), NULL, NULL, NULL, NULL, str(`${rng.int(1e6)}`)])),
      described(0x74, map([[str('iotdps-operation-type'), str('iotdps-register')]])),
      described(0x75, bin(Buffer.from(JSON.stringify({ registrationId: ctx.registrationId })))),
    ]);
    frames.push(frame(0, 0, Buffer.concat([described(0x14, list([uint(0), uint(n), bin(Buffer.from([n])), uint(0), bool(true)])), payload])));
  }
  frames.push(frame(0, 0, described(0x16, list([uint(0), bool(true)]))), frame(0, 0, described(0x18, list([]))));
  return frames;
}

export function amqpConnection(rng: Rng, valid: Buffer[]): Buffer[] {
  const mode = rng.int(12);
  if (mode === 0) return Array.from({ length: 1 + rng.int(10) }, () => rng.bytes(1 + rng.size(512)));
  if (mode === 1) {
    // the known sasl-init and variants of it: other counts, other performatives, other compounds
    const variant = Buffer.from(SASL_INIT_HUGE_COUNT);
    if (rng.chance(0.5)) variant.writeUInt32BE(rng.pick([0xffffffff, 0x7fffffff, 0x00ffffff]), 16);
    if (rng.chance(0.3)) variant[12] = rng.pick([0x40, 0x41, 0x42, 0x43, 0x44]);
    return [SASL_HEADER, variant];
  }
  if (mode === 2) {
    const body = described(rng.pick([0x10, 0x11, 0x12, 0x13, 0x14, 0x41, 0x44]), hugeCompound(rng));
    return rng.chance(0.5) ? [SASL_HEADER, frame(1, 0, body)] : [...valid.slice(0, 4), frame(0, 0, body)];
  }
  if (mode === 3) {
    // a frame size field far beyond what follows, or below the 8-byte minimum
    const broken = Buffer.from(rng.pick(valid.slice(1)));
    broken.writeUInt32BE(rng.pick([0, 1, 7, 0x7fffffff, 0xffffffff, 0x10000000]), 0);
    return [rng.pick([SASL_HEADER, AMQP_HEADER]), broken];
  }
  const frames = shuffleFrames(rng, valid);
  const rate = mode < 7 ? 0.05 : 0.25;
  return frames.map((f) => (rng.chance(rate) ? (rng.chance(0.2) ? Buffer.concat([f.subarray(0, 8 + rng.int(Math.max(1, f.length - 8))), hugeCompound(rng)]) : mutate(rng, f)) : f));
}
