/**
 * A bounded check of the AMQP 1.0 type encoding (AMQP 1.0 §1.6), run on every frame before rhea
 * decodes it. rhea trusts the counts it reads: an array32 claiming 2^32 null elements makes it
 * build 2^32 objects from 21 bytes, and nested descriptors or lists recurse as deep as the peer
 * likes. Here every count and size must be paid for by bytes actually received, and the work is
 * one pass with an explicit stack, so time and memory stay proportional to the input.
 */

/** Compounds and descriptors nested deeper than this are refused (rhea decodes them recursively). */
export const MAX_NESTING = 32;

/** Every format code AMQP 1.0 defines (§1.6); anything else is refused. */
const FORMAT_CODES = new Set([
  0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x60, 0x61, 0x70, 0x71, 0x72, 0x73, 0x74, 0x80,
  0x81, 0x82, 0x83, 0x84, 0x94, 0x98, 0xa0, 0xa1, 0xa3, 0xb0, 0xb1, 0xb3, 0xc0, 0xc1, 0xd0, 0xd1, 0xe0, 0xf0,
]);

/** Bytes of data after a fixed-width code, by its high nibble (§1.2: 0x4 empty .. 0x9 sixteen bytes). */
const FIXED_WIDTH: Record<number, number> = { 0x4: 0, 0x5: 1, 0x6: 2, 0x7: 4, 0x8: 8, 0x9: 16 };

export class EncodingError extends Error {
  override readonly name = 'EncodingError';
}

/** One open container: its end, how many values it still holds, and for arrays the element code. */
interface Container {
  end: number;
  /** Values still to read; a described value holds two (descriptor, value) and has no size of its own. */
  left: number;
  /** Sized compounds and arrays must end exactly where their size says. */
  sized: boolean;
  /** Array elements share one constructor: `undefined` while it is still to be read. */
  element?: number | undefined;
  /** An array whose element constructor (possibly described) has not been read yet. */
  array?: boolean;
}

/**
 * Checks the values in `bytes[start, end)`: exactly `count` values, or as many as fill the range
 * when `count` is undefined. Returns the offset after the last one; throws EncodingError.
 */
export function checkValues(bytes: Buffer, start = 0, end = bytes.length, count?: number): number {
  // Elements of zero width (an array of nulls, of true) take no bytes: together they may number
  // at most the bytes checked. Every other element takes at least one byte of its own.
  let budget = end - start;
  let at = start;
  const root: Container = { end, left: count ?? Infinity, sized: false };
  const stack: Container[] = [root];
  const open = (container: Container): void => {
    if (stack.length > MAX_NESTING) throw new EncodingError(`nested deeper than ${MAX_NESTING}`);
    stack.push(container);
  };
  const pay = (elements: number): void => {
    budget -= elements;
    if (budget < 0) throw new EncodingError('more elements than bytes');
  };

  while (stack.length > 0) {
    const top = stack[stack.length - 1] as Container;
    if (top.array) {
      // The element constructor comes even when the count is zero.
      if (at >= top.end) throw new EncodingError('an array without its element constructor');
      at = arrayConstructor(bytes, at, top, open, pay);
      continue;
    }
    if (top.left === 0 || (top === root && count === undefined && at === end)) {
      if (top.sized && at !== top.end) throw new EncodingError('a size does not match its elements');
      stack.pop();
      continue;
    }
    if (at >= top.end) throw new EncodingError(top.sized ? 'elements run past their size' : 'truncated value');
    top.left -= 1;
    let code: number;
    if (top.element === undefined) {
      code = bytes[at] as number;
      at += 1;
      if (code === 0x00) {
        // A described value (§1.2): a descriptor, then the value, each a whole value of its own.
        open({ end: top.end, left: 2, sized: false });
        continue;
      }
    } else {
      code = top.element;
    }
    if (!FORMAT_CODES.has(code)) throw new EncodingError(`unknown format code 0x${code.toString(16)}`);
    at = valueData(bytes, at, top.end, code, open);
  }
  return at;
}

/** The data of one value with format code `code` at `at`: fixed and variable widths are skipped, compounds opened. */
function valueData(bytes: Buffer, at: number, end: number, code: number, open: (container: Container) => void): number {
  const nibble = code >> 4;
  const fixed = FIXED_WIDTH[nibble];
  if (fixed !== undefined) return within(at + fixed, end);
  const width = nibble === 0xa || nibble === 0xc || nibble === 0xe ? 1 : 4;
  const size = readWidth(bytes, at, width, end);
  const dataEnd = within(at + width + size, end);
  if (nibble === 0xa || nibble === 0xb) return dataEnd;
  // Compounds and arrays: the size covers the count, which follows it.
  if (size < width) throw new EncodingError('a size smaller than its count');
  const elements = readWidth(bytes, at + width, width, end);
  const first = at + 2 * width;
  if (nibble === 0xc || nibble === 0xd) {
    // Every element takes at least its format code: one byte.
    if (elements > dataEnd - first) throw new EncodingError('more elements than bytes');
    if ((code & 0x0f) === 0x01 && elements % 2 !== 0) throw new EncodingError('a map with an odd count');
    open({ end: dataEnd, left: elements, sized: true });
  } else {
    open({ end: dataEnd, left: elements, sized: true, array: true });
  }
  return first;
}

/**
 * An array's element constructor (§1.6.1): a format code, possibly described. Once it is known,
 * fixed-width elements are skipped at once and the others read one by one as values without
 * constructors.
 */
function arrayConstructor(bytes: Buffer, at: number, array: Container, open: (container: Container) => void, pay: (n: number) => void): number {
  const code = bytes[at] as number;
  if (code === 0x00) {
    open({ end: array.end, left: 1, sized: false });
    return at + 1;
  }
  if (!FORMAT_CODES.has(code)) throw new EncodingError(`unknown format code 0x${code.toString(16)}`);
  array.array = false;
  array.element = code;
  const fixed = FIXED_WIDTH[code >> 4];
  const next = at + 1;
  if (fixed === undefined) {
    // Variable, compound and array elements start with a size: at least one byte each.
    if (array.left > array.end - next) throw new EncodingError('more elements than bytes');
    return next;
  }
  if (fixed * array.left !== array.end - next) throw new EncodingError('a size does not match its elements');
  // Zero-width elements (null, true, false, uint0, ulong0, list0) cost no bytes but one object each.
  if (fixed === 0) pay(array.left);
  array.left = 0;
  return array.end;
}

function readWidth(bytes: Buffer, at: number, width: number, end: number): number {
  within(at + width, end);
  return width === 1 ? (bytes[at] as number) : bytes.readUInt32BE(at);
}

function within(next: number, end: number): number {
  if (next > end) throw new EncodingError('a value runs past its end');
  return next;
}
