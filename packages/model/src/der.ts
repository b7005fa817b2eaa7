/** Just enough DER to read what node:crypto's X509Certificate does not expose. */

export interface DerElement {
  tag: number;
  /** Offset of the value within the buffer. */
  start: number;
  /** Offset just past the value. */
  end: number;
}

export function readElement(buffer: Buffer, offset: number): DerElement {
  const tag = buffer[offset];
  let lengthByte = buffer[offset + 1];
  if (tag === undefined || lengthByte === undefined) throw new RangeError('DER: truncated header');
  let start = offset + 2;
  let length = lengthByte;
  if (lengthByte & 0x80) {
    const count = lengthByte & 0x7f;
    if (count === 0 || count > 4) throw new RangeError('DER: unsupported length');
    length = 0;
    for (let i = 0; i < count; i++) {
      lengthByte = buffer[start + i];
      if (lengthByte === undefined) throw new RangeError('DER: truncated length');
      length = length * 256 + lengthByte;
    }
    start += count;
  }
  const end = start + length;
  if (end > buffer.length) throw new RangeError('DER: truncated value');
  return { tag, start, end };
}

/** The X.509 version (1, 2 or 3) from Certificate.tbsCertificate.version [0] EXPLICIT. */
export function certificateVersion(der: Buffer): number {
  const certificate = readElement(der, 0);
  const tbs = readElement(der, certificate.start);
  const first = readElement(der, tbs.start);
  if (first.tag !== 0xa0) return 1;
  const version = readElement(der, first.start);
  return (der[version.end - 1] ?? 0) + 1;
}
