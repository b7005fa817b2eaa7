import { connect as netConnect } from 'node:net';
import { Duplex } from 'node:stream';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

const APPLICATION_DATA = 23;

/**
 * A TLS client that counts the TLS records the server sends, by reading the record headers
 * (content type, version, length: 5 bytes) on the raw TCP socket beneath it. It pins TLS 1.2:
 * there, after the handshake, every application-data record is one the server wrote for us
 * (TLS 1.3 also sends session tickets as application data, at a moment we cannot predict).
 */
export class RecordCountingClient {
  private pending = Buffer.alloc(0);
  private received = Buffer.alloc(0);
  private waiters: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];

  private constructor(
    readonly tls: TLSSocket,
    private readonly counted: { records: number },
  ) {
    tls.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      for (const waiter of this.waiters.splice(0)) waiter.resolve();
    });
    tls.on('close', () => {
      for (const waiter of this.waiters.splice(0)) waiter.reject(new Error('connection closed'));
    });
  }

  /** Application-data records received so far. */
  get records(): number {
    return this.counted.records;
  }

  static async connect(port: number, ca: string): Promise<RecordCountingClient> {
    const raw = netConnect({ port, host: '127.0.0.1' });
    raw.setNoDelay(true);
    const counted = { records: 0 };
    let header = Buffer.alloc(0);
    let skip = 0;
    // TLS reads a net.Socket's handle natively, past any JS listener: hand it a plain Duplex that
    // relays the socket, so every record is seen here before it is decrypted.
    const relay = new Duplex({
      read: () => raw.resume(),
      write: (chunk: Buffer, _encoding, done) => raw.write(chunk, done),
      final: (done) => raw.end(done),
      destroy: (error, done) => {
        raw.destroy();
        done(error);
      },
    });
    raw.on('end', () => relay.push(null));
    raw.on('close', () => relay.destroy());
    raw.on('error', (error) => relay.destroy(error));
    raw.on('data', (chunk: Buffer) => {
      let at = 0;
      while (at < chunk.length) {
        if (skip > 0) {
          const take = Math.min(skip, chunk.length - at);
          skip -= take;
          at += take;
          continue;
        }
        const need = 5 - header.length;
        header = Buffer.concat([header, chunk.subarray(at, at + need)]);
        at += Math.min(need, chunk.length - at);
        if (header.length < 5) continue;
        if (header[0] === APPLICATION_DATA) counted.records += 1;
        skip = header.readUInt16BE(3);
        header = Buffer.alloc(0);
      }
      if (!relay.push(chunk)) raw.pause();
    });
    const tls = tlsConnect({ socket: relay, ca, servername: 'localhost', maxVersion: 'TLSv1.2' });
    await new Promise<void>((resolve, reject) => {
      tls.once('secureConnect', resolve);
      tls.once('error', reject);
    });
    return new RecordCountingClient(tls, counted);
  }

  /** Sends `packet`, then resolves with the next whole MQTT packet received and the records it took. */
  async exchange(packet: Buffer): Promise<{ packet: Buffer; records: number }> {
    const before = this.records;
    this.tls.write(packet);
    const received = await this.nextPacket();
    return { packet: received, records: this.records - before };
  }

  /** The next whole MQTT packet (fixed header, remaining length, body). */
  async nextPacket(): Promise<Buffer> {
    for (;;) {
      const size = mqttPacketSize(this.received);
      if (size !== undefined) {
        const packet = this.received.subarray(0, size);
        this.received = this.received.subarray(size);
        return packet;
      }
      if (this.tls.destroyed) throw new Error('connection closed');
      await new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    }
  }

  close(): void {
    this.tls.destroy();
  }
}

function mqttPacketSize(buffer: Buffer): number | undefined {
  let length = 0;
  let multiplier = 1;
  for (let i = 1; i < 5 && i < buffer.length; i++) {
    const byte = buffer[i] as number;
    length += (byte & 0x7f) * multiplier;
    multiplier *= 128;
    if (!(byte & 0x80)) return buffer.length >= i + 1 + length ? i + 1 + length : undefined;
  }
  return undefined;
}

// A minimal MQTT 3.1.1 encoder, enough for the packets a device sends.

function utf8(value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  const length = Buffer.alloc(2);
  length.writeUInt16BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

function frame(firstByte: number, body: Buffer): Buffer {
  const lengthBytes: number[] = [];
  let remaining = body.length;
  do {
    let byte = remaining % 128;
    remaining = Math.floor(remaining / 128);
    if (remaining > 0) byte |= 0x80;
    lengthBytes.push(byte);
  } while (remaining > 0);
  return Buffer.concat([Buffer.from([firstByte, ...lengthBytes]), body]);
}

export function mqttConnect(options: { clientId: string; username: string; password: string; clean?: boolean }): Buffer {
  const flags = 0x80 | 0x40 | (options.clean === false ? 0 : 0x02);
  return frame(
    0x10,
    Buffer.concat([utf8('MQTT'), Buffer.from([4, flags, 0, 180]), utf8(options.clientId), utf8(options.username), utf8(options.password)]),
  );
}

export function mqttSubscribe(packetId: number, topic: string, qos = 1): Buffer {
  return frame(0x82, Buffer.concat([Buffer.from([packetId >> 8, packetId & 0xff]), utf8(topic), Buffer.from([qos])]));
}

export function mqttPublish(packetId: number, topic: string, payload: string | Buffer): Buffer {
  return frame(0x32, Buffer.concat([utf8(topic), Buffer.from([packetId >> 8, packetId & 0xff]), Buffer.from(payload)]));
}

/** The MQTT packet type (CONNACK 2, PUBLISH 3, PUBACK 4, SUBACK 9). */
export const packetType = (packet: Buffer): number => (packet[0] ?? 0) >> 4;

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}
