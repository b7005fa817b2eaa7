/**
 * SHA-256 (FIPS 180-4) block by block, for HMAC from precomputed key states. Used only to find
 * which group key a device's token derives from (groupKeySearch.ts); every match is then verified
 * with node:crypto, so a mistake here can hide a match but never accept a token.
 *
 * node:crypto computes one HMAC in a few microseconds, almost all of it the cost of a call into
 * C++ and its objects; the arithmetic of one 64-byte block takes a fraction of a microsecond in
 * JavaScript. Keeping each group key's inner and outer states (the blocks `key ^ ipad` and
 * `key ^ opad`, hashed once) leaves six blocks per key and device, with no allocation.
 */

const K = Int32Array.from([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be,
  0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa,
  0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85,
  0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3,
  0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f,
  0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/** The initial hash value H(0). */
export const SHA256_IV = Int32Array.from([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);

const W = new Int32Array(64);

/**
 * One compression: the 8 words of `state` at `stateAt`, the 16 big-endian words of `block` at
 * `blockAt`; the result goes to `out` at `outAt` (which may be the state itself).
 */
export function compress(state: Int32Array, stateAt: number, block: Int32Array, blockAt: number, out: Int32Array, outAt: number): void {
  for (let i = 0; i < 16; i++) W[i] = block[blockAt + i] as number;
  for (let i = 16; i < 64; i++) {
    const x = W[i - 15] as number;
    const y = W[i - 2] as number;
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    W[i] = ((W[i - 16] as number) + s0 + (W[i - 7] as number) + s1) | 0;
  }
  let a = state[stateAt] as number;
  let b = state[stateAt + 1] as number;
  let c = state[stateAt + 2] as number;
  let d = state[stateAt + 3] as number;
  let e = state[stateAt + 4] as number;
  let f = state[stateAt + 5] as number;
  let g = state[stateAt + 6] as number;
  let h = state[stateAt + 7] as number;
  for (let i = 0; i < 64; i++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (h + S1 + ((e & f) ^ (~e & g)) + (K[i] as number) + (W[i] as number)) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  out[outAt] = ((state[stateAt] as number) + a) | 0;
  out[outAt + 1] = ((state[stateAt + 1] as number) + b) | 0;
  out[outAt + 2] = ((state[stateAt + 2] as number) + c) | 0;
  out[outAt + 3] = ((state[stateAt + 3] as number) + d) | 0;
  out[outAt + 4] = ((state[stateAt + 4] as number) + e) | 0;
  out[outAt + 5] = ((state[stateAt + 5] as number) + f) | 0;
  out[outAt + 6] = ((state[stateAt + 6] as number) + g) | 0;
  out[outAt + 7] = ((state[stateAt + 7] as number) + h) | 0;
}

/**
 * `message` padded as the tail of a hash whose first `before` bytes (a multiple of 64) are already
 * absorbed: big-endian words, 0x80, zeros, and the bit length of the whole input.
 */
export function paddedBlocks(message: Uint8Array, before: number): Int32Array {
  const blocks = Math.ceil((message.length + 9) / 64);
  const bytes = new Uint8Array(blocks * 64);
  bytes.set(message);
  bytes[message.length] = 0x80;
  const bits = (before + message.length) * 8;
  const view = new DataView(bytes.buffer);
  view.setUint32(bytes.length - 8, Math.floor(bits / 0x100000000));
  view.setUint32(bytes.length - 4, bits >>> 0);
  const words = new Int32Array(blocks * 16);
  for (let i = 0; i < words.length; i++) words[i] = view.getInt32(i * 4);
  return words;
}

/**
 * The HMAC-SHA256 key states of `key` (at most 64 bytes; longer keys are hashed first by the
 * caller, as HMAC does): the state after `key ^ ipad` at `out[at..at+8)`, after `key ^ opad` at
 * `out[at+8..at+16)`.
 */
export function hmacKeyStates(key: Uint8Array, out: Int32Array, at: number): void {
  const padded = new Uint8Array(64);
  padded.set(key);
  const view = new DataView(padded.buffer);
  const block = new Int32Array(16);
  for (const [pad, offset] of [[0x36363636, 0], [0x5c5c5c5c, 8]] as const) {
    for (let i = 0; i < 16; i++) block[i] = view.getInt32(i * 4) ^ pad;
    compress(SHA256_IV, 0, block, 0, out, at + offset);
  }
}

const inner = new Int32Array(8);
const tail = new Int32Array(16);
// The outer hash always absorbs one 32-byte inner digest: 0x80 after it, then the bit length of 64 + 32 bytes.
tail[8] = 0x80000000 | 0;
tail[15] = (64 + 32) * 8;

/**
 * HMAC-SHA256 from key states (hmacKeyStates) over a message already padded by `paddedBlocks(…, 64)`;
 * the 8-word digest goes to `out` at `outAt`.
 */
export function hmacFromStates(states: Int32Array, at: number, message: Int32Array, out: Int32Array, outAt: number): void {
  inner.set(states.subarray(at, at + 8));
  for (let block = 0; block < message.length; block += 16) compress(inner, 0, message, block, inner, 0);
  tail.set(inner, 0);
  compress(states, at + 8, tail, 0, out, outAt);
}

const keyBlock = new Int32Array(16);

/** The key states of a 32-byte key given as 8 words (a derived device key, straight from its HMAC). */
export function hmacKeyStatesOfWords(key: Int32Array, keyAt: number, out: Int32Array, at: number): void {
  for (const [pad, offset] of [[0x36363636, 0], [0x5c5c5c5c, 8]] as const) {
    for (let i = 0; i < 8; i++) keyBlock[i] = (key[keyAt + i] as number) ^ pad;
    for (let i = 8; i < 16; i++) keyBlock[i] = pad;
    compress(SHA256_IV, 0, keyBlock, 0, out, at + offset);
  }
}
