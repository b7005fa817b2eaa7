import { Duplex } from 'node:stream';
import { endGracefully } from '@opendps/protocol-base';

/** How long a client that sent DISCONNECT has to close its side before it is cut off. */
const GOODBYE_LINGER_MS = 2_000;

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
  /** The peer sent DISCONNECT: it closes its side next, and must see our FIN, not a reset. */
  private peerSaidGoodbye = false;

  constructor(
    private readonly inner: Duplex,
    private readonly maxPacketBytes: number,
  ) {
    super({ allowHalfOpen: false });
    inner.on('data', this.onData);
    inner.on('end', () => this.push(null));
    inner.on('error', (error: Error) => this.destroy(error));
    inner.on('close', () => this.destroy());
  }

  private readonly onData = (chunk: Buffer): void => {
    const problem = this.inspect(chunk);
    if (problem) {
      this.destroy(new Error(problem));
      return;
    }
    if (!this.push(chunk)) this.inner.pause();
  };

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

  /**
   * aedes destroys the connection when the client sends DISCONNECT [MQTT-3.14.4-2]. Destroying a
   * socket whose peer's close_notify and FIN are still unread makes the kernel answer with a reset,
   * and a client still reading (mqtt.js waits for our side to close) fails with ECONNRESET after a
   * successful exchange. So after a DISCONNECT the socket is ended (close_notify, FIN) and closes
   * when the peer's FIN arrives, or is cut off after `GOODBYE_LINGER_MS`.
   */
  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    if (!error && this.peerSaidGoodbye && !this.inner.destroyed) {
      // Whatever still arrives is read and dropped, so the peer's FIN is seen.
      this.inner.off('data', this.onData);
      this.inner.resume();
      void endGracefully(this.inner, () => this.inner.end(), GOODBYE_LINGER_MS);
    } else {
      this.inner.destroy();
    }
    done(error);
  }

  /** Walk the fixed headers in `chunk`; a problem description when the connection must close. */
  private inspect(chunk: Buffer): string | undefined {
    let at = 0;
    while (at < chunk.length) {
      if (this.expect === 'type') {
        // [MQTT-2.2.1] the packet type is the high nibble of the first byte; 14 is DISCONNECT
        if ((chunk[at] ?? 0) >> 4 === 14) this.peerSaidGoodbye = true;
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
