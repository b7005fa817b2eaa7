/**
 * MQTT byte streams for the property tests of the packet-size checks (model PacketSizeLimit, the
 * DPS front-end's frame reader) and of the servers that use them: packets, arbitrary chunking, and
 * an independent reference walk.
 */

/** Splits `data` at the given cut points (chunk boundaries the network may choose). */
export function chunked(data: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const point of [...points, data.length]) {
    if (point > from) chunks.push(data.subarray(from, point));
    from = point;
  }
  return chunks;
}

/** The reference: where in `data` the first oversized or malformed header ends, or undefined. */
export function firstProblem(data: Buffer, max: number): number | undefined {
  let at = 0;
  while (at < data.length) {
    at += 1;
    let length = 0;
    let multiplier = 1;
    for (let n = 1; ; n++) {
      if (at >= data.length) return undefined;
      const byte = data[at++] as number;
      length += (byte & 0x7f) * multiplier;
      multiplier *= 128;
      if (!(byte & 0x80)) break;
      if (n === 4) return at;
    }
    if (length > max) return at;
    at += length;
  }
  return undefined;
}
