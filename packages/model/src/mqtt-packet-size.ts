/**
 * Walks the MQTT fixed headers of a byte stream, chunk by chunk, and names the first packet that
 * declares more than `maxPacketBytes` (the fixed header announces the size before the body arrives)
 * or a malformed remaining length, so an oversized frame costs one connection and never the
 * server's memory. aedes has no packet size limit of its own: the built-in hub checks its input
 * with this before aedes reads it (the DPS front-end cuts its own frames, protocols/mqtt frame-codec).
 */
export class PacketSizeLimit {
  private expect: 0 | 1 | 2 = TYPE;
  private length = 0;
  private multiplier = 1;
  private lengthBytes = 0;
  private remaining = 0;

  constructor(private readonly maxPacketBytes: number) {}

  /** Walk the fixed headers in `chunk`; a problem description when the connection must close. */
  inspect(chunk: Uint8Array): string | undefined {
    let at = 0;
    while (at < chunk.length) {
      if (this.expect === TYPE) {
        at += 1;
        this.expect = LENGTH;
        this.length = 0;
        this.multiplier = 1;
        this.lengthBytes = 0;
      } else if (this.expect === LENGTH) {
        const byte = chunk[at++] ?? 0;
        this.length += (byte & 0x7f) * this.multiplier;
        this.multiplier *= 128;
        this.lengthBytes += 1;
        if (byte & 0x80) {
          // [MQTT-2.2.3] the remaining length takes at most four bytes
          if (this.lengthBytes === 4) return 'malformed remaining length';
          continue;
        }
        if (this.length > this.maxPacketBytes) return `packet of ${this.length} bytes exceeds ${this.maxPacketBytes}`;
        this.remaining = this.length;
        this.expect = this.remaining === 0 ? TYPE : BODY;
      } else {
        const take = Math.min(this.remaining, chunk.length - at);
        at += take;
        this.remaining -= take;
        if (this.remaining === 0) this.expect = TYPE;
      }
    }
    return undefined;
  }
}

/**
 * The remaining length of a fixed header (MQTT 3.1.1 §2.2.3): seven bits a byte, least
 * significant first, 1 to 4 bytes. No imports, so the console bundles this file as it is.
 */
export function encodeRemainingLength(length: number): number[] {
  if (!Number.isInteger(length) || length < 0 || length > 268_435_455) throw new RangeError(`MQTT remaining length ${length} is out of range`);
  const bytes: number[] = [];
  do {
    let byte = length % 128;
    length = Math.floor(length / 128);
    if (length > 0) byte |= 0x80;
    bytes.push(byte);
  } while (length > 0);
  return bytes;
}

const TYPE = 0;
const LENGTH = 1;
const BODY = 2;
