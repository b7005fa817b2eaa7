import { createHmac } from 'node:crypto';

/**
 * KDFa (TPM 2.0 Part 1, 11.4.10.2): SP 800-108 counter mode with HMAC.
 * block_i = HMAC(key, u32(i) ‖ label ‖ 0x00 ‖ contextU ‖ contextV ‖ u32(bits)), truncated to `bits`.
 * `label` is given without its terminating NUL, which KDFa always adds.
 */
export function kdfa(
  hash: string,
  key: Uint8Array,
  label: string,
  contextU: Uint8Array,
  contextV: Uint8Array,
  bits: number,
): Buffer {
  if (!Number.isInteger(bits) || bits <= 0 || bits % 8 !== 0) {
    throw new RangeError('KDFa is only used here for whole bytes.');
  }
  const bytes = bits / 8;
  const fixed = Buffer.concat([Buffer.from(label, 'latin1'), Buffer.of(0), contextU, contextV, u32(bits)]);
  const blocks: Buffer[] = [];
  let length = 0;
  for (let i = 1; length < bytes; i++) {
    const block = createHmac(hash, key).update(u32(i)).update(fixed).digest();
    blocks.push(block);
    length += block.length;
  }
  return Buffer.concat(blocks).subarray(0, bytes);
}

function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value);
  return b;
}
