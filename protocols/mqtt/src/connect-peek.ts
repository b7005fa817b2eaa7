import type { Duplex } from 'node:stream';
import { MORE, remainingLength } from './frame-codec';

/** What a CONNECT says about where it is going: enough to tell a DPS device from a hub device. */
export interface ConnectSummary {
  clientId: string;
  username?: string;
}

/** A CONNECT larger than this is not peeked at (it goes to the default handler and its limits). */
const MAX_PEEKED_CONNECT_BYTES = 16 * 1024;

/**
 * Reads a stream until its first MQTT packet is complete, puts every byte back and calls `done`
 * with the CONNECT's client id and username (undefined when the first packet is not a CONNECT this
 * parser reads, or is too large). The bytes are read in paused mode and unshifted, so whoever
 * takes the stream next parses it from its first byte. A stream that ends, fails or stays silent
 * for `timeoutMs` is destroyed and `done` is not called.
 */
export function peekConnect(stream: Duplex, timeoutMs: number, done: (connect: ConnectSummary | undefined) => void): void {
  const chunks: Buffer[] = [];
  let buffered = 0;
  const timer = setTimeout(() => {
    cleanup();
    stream.destroy();
  }, timeoutMs);

  const finish = (connect: ConnectSummary | undefined): void => {
    cleanup();
    stream.unshift(Buffer.concat(chunks));
    done(connect);
  };
  const onReadable = (): void => {
    for (let chunk = stream.read() as Buffer | string | null; chunk !== null; chunk = stream.read() as Buffer | string | null) {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      chunks.push(bytes);
      buffered += bytes.length;
    }
    if (buffered === 0) return;
    const all = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
    const outcome = readConnect(all);
    if (outcome === 'more' && buffered < MAX_PEEKED_CONNECT_BYTES) return;
    finish(outcome === 'more' ? undefined : outcome);
  };
  // Until someone takes the stream, its errors (a reset, a failed TLS read) end it here.
  const onGone = (): void => {
    cleanup();
    stream.destroy();
  };
  function cleanup(): void {
    clearTimeout(timer);
    stream.off('readable', onReadable);
    stream.off('close', onGone);
    stream.off('end', onGone);
    stream.off('error', onGone);
  }
  stream.on('readable', onReadable);
  stream.once('close', onGone);
  stream.once('end', onGone);
  stream.once('error', onGone);
}

/**
 * Decodes the head of an MQTT 3.1/3.1.1/5 CONNECT (MQTT 3.1.1 §3.1): 'more' when the packet is
 * not complete yet, undefined when the bytes are not a CONNECT it can read.
 */
export function readConnect(bytes: Buffer): ConnectSummary | undefined | 'more' {
  if (bytes.length === 0) return 'more';
  if (bytes[0] !== 0x10) return undefined; // [MQTT-2.2.2-2] CONNECT, flags 0
  const header = remainingLength(bytes, 0);
  if (header === MORE) return 'more';
  if (header === undefined) return undefined;
  const end = header.bodyAt + header.length;
  if (bytes.length < end) return 'more';
  const packet = bytes.subarray(0, end);
  const reader = new Reader(packet, header.bodyAt);
  const protocol = reader.string();
  if (protocol !== 'MQTT' && protocol !== 'MQIsdp') return undefined;
  const level = reader.byte();
  const flags = reader.byte();
  reader.skip(2); // keep alive
  if (level === 5) reader.skip(reader.varint()); // properties
  const clientId = reader.string();
  if (flags & 0x04) {
    if (level === 5) reader.skip(reader.varint()); // will properties
    reader.string();
    reader.skip(reader.uint16());
  }
  const username = flags & 0x80 ? reader.string() : undefined;
  if (reader.failed || clientId === undefined) return undefined;
  return { clientId, ...(username !== undefined ? { username } : {}) };
}

class Reader {
  failed = false;
  constructor(
    private readonly bytes: Buffer,
    private at: number,
  ) {}

  byte(): number {
    if (this.at >= this.bytes.length) return this.fail(0);
    return this.bytes[this.at++] as number;
  }

  uint16(): number {
    if (this.at + 2 > this.bytes.length) return this.fail(0);
    const value = this.bytes.readUInt16BE(this.at);
    this.at += 2;
    return value;
  }

  varint(): number {
    let value = 0;
    for (let multiplier = 1, count = 0; count < 4; multiplier *= 128, count++) {
      const byte = this.byte();
      value += (byte & 0x7f) * multiplier;
      if (!(byte & 0x80)) return value;
    }
    return this.fail(0);
  }

  string(): string | undefined {
    const length = this.uint16();
    if (this.failed || this.at + length > this.bytes.length) return this.fail(undefined);
    const value = this.bytes.toString('utf8', this.at, this.at + length);
    this.at += length;
    return value;
  }

  skip(count: number): void {
    if (this.at + count > this.bytes.length) this.fail(undefined);
    else this.at += count;
  }

  private fail<T>(value: T): T {
    this.failed = true;
    this.at = this.bytes.length;
    return value;
  }
}
