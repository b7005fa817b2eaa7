import { connect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { testPki } from './helpers';

/** rhea's frame codec, used to write and read frames by hand (not part of rhea's typed API). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const frames: any = require('rhea/lib/frames.js');

export const SASL_HEADER = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0x03, 0x01, 0x00, 0x00]);
export const AMQP_HEADER = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0x00, 0x01, 0x00, 0x00]);

/** SASL performative descriptors (AMQP 1.0 §5.3.3). */
export const SASL = { mechanisms: 0x40, init: 0x41, challenge: 0x42, response: 0x43, outcome: 0x44 } as const;
/** AMQP performative descriptors (AMQP 1.0 §2.7). */
export const AMQP = { open: 0x10, begin: 0x11, attach: 0x12, flow: 0x13, transfer: 0x14, disposition: 0x15, detach: 0x16, end: 0x17, close: 0x18 } as const;

export interface ReadFrame {
  descriptor: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  performative: any;
}

/**
 * A hand-written AMQP client over TLS: raw headers and SASL frames, with rhea's codec only to
 * encode and decode single frames. It sees every byte the server sends.
 */
export class RawClient {
  private buffer = Buffer.alloc(0);
  private waiting: (() => void) | undefined;
  readonly headers: Buffer[] = [];
  private readonly frames: ReadFrame[] = [];
  ended = false;

  private constructor(readonly socket: TLSSocket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.parse();
      this.waiting?.();
    });
    socket.on('close', () => {
      this.ended = true;
      this.waiting?.();
    });
    socket.on('error', () => undefined);
  }

  static open(port: number, options: ConnectionOptions = {}): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: 'localhost', port, ca: testPki().ca.certificatePem, servername: 'localhost', ...options }, () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  sendSasl(performative: unknown): void {
    this.write(frames.write_frame(frames.sasl_frame(performative)));
  }

  init(mechanism: string, initialResponse?: Buffer, hostname = 'localhost'): void {
    this.sendSasl(frames.sasl_init({ mechanism, ...(initialResponse ? { initial_response: initialResponse } : {}), hostname }));
  }

  respond(response: Buffer): void {
    this.sendSasl(frames.sasl_response({ response }));
  }

  /** An AMQP performative on a channel, e.g. `amqp(0, frames.open({...}))`. */
  amqp(channel: number, performative: unknown): void {
    this.write(frames.write_frame(frames.amqp_frame(channel, performative)));
  }

  /** The AMQP header and an Open, as a client sends them once SASL is done. */
  open(hostname = 'localhost'): void {
    this.write(AMQP_HEADER);
    this.amqp(0, frames.open({ container_id: 'raw-client', hostname }));
  }

  /** The next frame the server sent (protocol headers are collected in `headers`). */
  async next(timeoutMs = 5000): Promise<ReadFrame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const frame = this.frames.shift();
      if (frame) return frame;
      if (this.ended) throw new Error('connection closed');
      if (Date.now() > deadline) throw new Error('no frame in time');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        this.waiting = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Resolves once the server has closed the connection. */
  async closed(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      if (Date.now() > deadline) throw new Error('connection still open');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  destroy(): void {
    this.socket.destroy();
  }

  private parse(): void {
    for (;;) {
      if (this.buffer.length >= 4 && this.buffer.subarray(0, 4).toString('latin1') === 'AMQP') {
        if (this.buffer.length < 8) return;
        this.headers.push(this.buffer.subarray(0, 8));
        this.buffer = this.buffer.subarray(8);
        continue;
      }
      if (this.buffer.length < 4) return;
      const size = this.buffer.readUInt32BE(0);
      if (this.buffer.length < size) return;
      const frame = frames.read_frame(this.buffer.subarray(0, size));
      this.buffer = this.buffer.subarray(size);
      if (frame.performative) {
        this.frames.push({ descriptor: Number(frame.performative.constructor.descriptor.numeric), performative: frame.performative });
      }
    }
  }
}
