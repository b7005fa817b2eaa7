import type { Rng } from './rng';

/** Values that break length and count fields: zero, one, signed and unsigned limits. */
const INTERESTING = [0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff];

/** One generic mutation of a valid frame; the protocol generators add their own tricks on top. */
export function mutate(rng: Rng, frame: Buffer): Buffer {
  const out = Buffer.from(frame);
  if (out.length === 0) return rng.bytes(1 + rng.size(16));
  switch (rng.int(8)) {
    case 0: {
      // bit flips
      for (let n = 1 + rng.int(4); n > 0; n--) {
        const at = rng.int(out.length);
        out[at] = (out[at] as number) ^ (1 << rng.int(8));
      }
      return out;
    }
    case 1:
      return out.subarray(0, rng.int(out.length)); // truncation
    case 2: {
      // a 32-bit field set to an interesting value
      const at = rng.int(Math.max(1, out.length - 3));
      const value = rng.pick(INTERESTING);
      const field = Buffer.alloc(4);
      field.writeUInt32BE(value >>> 0);
      field.copy(out, at, 0, Math.min(4, out.length - at));
      return out;
    }
    case 3: {
      // a byte set to an interesting value
      out[rng.int(out.length)] = rng.pick([0, 0x7f, 0x80, 0xff, 0x40, 0xc0, 0xd0, 0xf0]);
      return out;
    }
    case 4: {
      // random bytes inserted
      const at = rng.int(out.length + 1);
      return Buffer.concat([out.subarray(0, at), rng.bytes(1 + rng.size(64)), out.subarray(at)]);
    }
    case 5: {
      // a slice duplicated in place
      const from = rng.int(out.length);
      const to = from + 1 + rng.int(out.length - from);
      return Buffer.concat([out.subarray(0, to), out.subarray(from, to), out.subarray(to)]);
    }
    case 6: {
      // a slice removed
      const from = rng.int(out.length);
      return Buffer.concat([out.subarray(0, from), out.subarray(from + 1 + rng.int(out.length - from))]);
    }
    default:
      return Buffer.concat([out, rng.bytes(rng.size(32))]); // trailing garbage
  }
}

/** Reorders, duplicates and drops frames of a valid sequence. */
export function shuffleFrames(rng: Rng, frames: Buffer[]): Buffer[] {
  const out = [...frames];
  for (let n = rng.int(3); n > 0; n--) {
    const kind = rng.int(3);
    const at = rng.int(out.length);
    if (kind === 0) out.splice(rng.int(out.length + 1), 0, out[at] as Buffer);
    else if (kind === 1 && out.length > 1) out.splice(at, 1);
    else {
      const other = rng.int(out.length);
      [out[at], out[other]] = [out[other] as Buffer, out[at] as Buffer];
    }
  }
  return out;
}
