import { Duplex } from 'node:stream';

/**
 * Sits between the socket and the MQTT parser and closes a connection whose next packet declares
 * more than `maxPacketBytes` (the MQTT fixed header announces the size before the body arrives), so
 * an oversized or malformed frame costs one connection and never the server's memory.
 */
export class PacketSizeGuard extends Duplex {
  private expect: 'type' | 'length' | 'body' = 'type';
  private length = 0;
  private multiplier = 1;
  private lengthBytes = 0;
  private remaining = 0;

  constructor(
    private readonly inner: Duplex,
    private readonly maxPacketBytes: number,
  ) {
    super({ allowHalfOpen: false });
    inner.on('data', (chunk: Buffer) => {
      const problem = this.inspect(chunk);
      if (problem) {
        this.destroy(new Error(problem));
        return;
      }
      if (!this.push(chunk)) inner.pause();
    });
    inner.on('end', () => this.push(null));
    inner.on('error', (error: Error) => this.destroy(error));
    inner.on('close', () => this.destroy());
  }

  override _read(): void {
    this.inner.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.inner.write(chunk, done);
  }

  /**
   * mqtt-packet corks us and writes a packet field by field; on uncork the pieces arrive here
   * together and leave in one write, hence one TLS record (not one record per field).
   */
  override _writev(chunks: Array<{ chunk: Buffer }>, done: (error?: Error | null) => void): void {
    this.inner.write(Buffer.concat(chunks.map(({ chunk }) => chunk)), done);
  }

  override _final(done: (error?: Error | null) => void): void {
    this.inner.end();
    done();
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    this.inner.destroy();
    done(error);
  }

  /** Walk the fixed headers in `chunk`; a problem description when the connection must close. */
  private inspect(chunk: Buffer): string | undefined {
    let at = 0;
    while (at < chunk.length) {
      if (this.expect === 'type') {
        at += 1;
        this.expect = 'length';
        this.length = 0;
        this.multiplier = 1;
        this.lengthBytes = 0;
      } else if (this.expect === 'length') {
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
        this.expect = this.remaining === 0 ? 'type' : 'body';
      } else {
        const take = Math.min(this.remaining, chunk.length - at);
        at += take;
        this.remaining -= take;
        if (this.remaining === 0) this.expect = 'type';
      }
    }
    return undefined;
  }
}
