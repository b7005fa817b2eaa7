import { Duplex } from 'node:stream';

const HEADER = Buffer.from('AMQP', 'latin1');
/** The answer to a protocol header this server cannot speak (AMQP 1.0 §2.2): AMQP 1.0 over SASL. */
const SUPPORTED_HEADER = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0x03, 0x01, 0x00, 0x00]);
const TRANSFER = 0x14;

export interface FrameLimits {
  /** Largest frame accepted (our Open's max-frame-size). */
  maxFrameBytes: number;
  /** Largest delivery accepted, summed over the frames of a multi-frame transfer. */
  maxDeliveryBytes: number;
}

/**
 * Sits between the socket and rhea and passes bytes on only as whole protocol headers and frames
 * within the limits. rhea would otherwise wait for any frame size a peer announces and concatenate
 * the frames of an unfinished delivery without bound: a malformed or oversized frame costs one
 * connection and never the server's memory.
 */
export class FrameGuard extends Duplex {
  private buffer: Buffer = Buffer.alloc(0);
  /** Bytes of the unfinished delivery on each `channel:handle`. */
  private readonly unfinished = new Map<string, number>();
  /** A first whole unit (the client's protocol header) has passed. */
  private started = false;
  /** Answering a bad first header: nothing more is read. */
  private refusing = false;

  constructor(
    private readonly inner: Duplex,
    private readonly limits: FrameLimits,
  ) {
    super({ allowHalfOpen: false });
    inner.on('data', (chunk: Buffer) => this.receive(chunk));
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

  override _final(done: (error?: Error | null) => void): void {
    this.inner.end();
    done();
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    this.inner.destroy();
    done(error);
  }

  private receive(chunk: Buffer): void {
    if (this.destroyed || this.refusing) return;
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    let at = 0;
    for (;;) {
      const unit = this.nextUnit(at);
      if (typeof unit === 'string') {
        if (!this.started && at === 0) this.refuseProtocol(unit);
        else this.destroy(new Error(unit));
        return;
      }
      if (unit === 0) break;
      at += unit;
    }
    const complete = this.buffer.subarray(0, at);
    this.buffer = this.buffer.subarray(at);
    if (complete.length > 0) this.started = true;
    if (complete.length > 0 && !this.push(complete)) this.inner.pause();
  }

  /**
   * AMQP 1.0 §2.2: a peer whose protocol header the server does not support is sent a header it
   * does support, then the socket is closed. The same answer goes to bytes that are not AMQP at all.
   */
  private refuseProtocol(problem: string): void {
    this.refusing = true;
    this.inner.end(SUPPORTED_HEADER, () => this.destroy(new Error(problem)));
  }

  /** The length of the complete header or frame at `at`, 0 when more bytes are needed, or a problem. */
  private nextUnit(at: number): number | string {
    const available = this.buffer.length - at;
    if (available < 4) return 0;
    if (!this.started && at === 0 && !this.buffer.subarray(0, 4).equals(HEADER)) return 'expected an AMQP protocol header';
    // A protocol header comes first, and again after SASL; as a frame size it would be ~1 GB.
    if (this.buffer.subarray(at, at + 4).equals(HEADER)) {
      if (available < 8) return 0;
      const [id, major, minor, revision] = this.buffer.subarray(at + 4, at + 8);
      if ((id !== 0 && id !== 3) || major !== 1 || minor !== 0 || revision !== 0) return 'unsupported AMQP protocol header';
      return 8;
    }
    const size = this.buffer.readUInt32BE(at);
    if (size < 8) return `malformed frame size ${size}`;
    if (size > this.limits.maxFrameBytes) return `frame of ${size} bytes exceeds ${this.limits.maxFrameBytes}`;
    if (available < size) return 0;
    const frame = this.buffer.subarray(at, at + size);
    const dataOffset = (frame[4] ?? 0) * 4;
    if (dataOffset < 8 || dataOffset > size) return 'malformed frame data offset';
    if (frame[5] === 0x00 && dataOffset < size) return this.account(frame.readUInt16BE(6), frame.subarray(dataOffset), size);
    return size;
  }

  /** Sums the frames of each unfinished delivery (`more` set) and refuses one past the limit. */
  private account(channel: number, body: Buffer, size: number): number | string {
    const transfer = readTransfer(body);
    if (transfer === null) return size;
    if (transfer === undefined) return 'malformed transfer frame';
    const key = `${channel}:${transfer.handle}`;
    const total = (this.unfinished.get(key) ?? 0) + size;
    if (total > this.limits.maxDeliveryBytes) return `delivery of more than ${this.limits.maxDeliveryBytes} bytes`;
    if (transfer.more) this.unfinished.set(key, total);
    else this.unfinished.delete(key);
    return size;
  }
}

/**
 * The `handle` and `more` fields of a transfer performative (AMQP 1.0 §2.7.5), `null` for another
 * performative, `undefined` when the encoding is broken. A minimal reader: fields are skipped by
 * their constructor's width class (AMQP 1.0 §1.6).
 */
export function readTransfer(body: Buffer): { handle: number; more: boolean } | null | undefined {
  if (body[0] !== 0x00) return undefined;
  let at = 1;
  let code: number | undefined;
  if (body[at] === 0x53) code = body[at + 1];
  else if (body[at] === 0x80 && body.length >= at + 9) code = Number(body.readBigUInt64BE(at + 1));
  if (code === undefined) return undefined;
  if (code !== TRANSFER) return null;
  at += body[at] === 0x53 ? 2 : 9;
  const list = body[at];
  let count: number;
  if (list === 0x45) return undefined; // handle is mandatory
  if (list === 0xc0 && body.length >= at + 3) {
    count = body[at + 2] ?? 0;
    at += 3;
  } else if (list === 0xd0 && body.length >= at + 9) {
    count = body.readUInt32BE(at + 5);
    at += 9;
  } else {
    return undefined;
  }
  const handle = readUint(body, at);
  if (!handle) return undefined;
  at = handle.next;
  let more = false;
  for (let field = 1; field < Math.min(count, 6); field += 1) {
    if (field === 5) {
      const value = body[at];
      more = value === 0x41 || (value === 0x56 && body[at + 1] === 1);
      break;
    }
    const next = skip(body, at);
    if (next === undefined) return undefined;
    at = next;
  }
  return { handle: handle.value, more };
}

function readUint(body: Buffer, at: number): { value: number; next: number } | undefined {
  switch (body[at]) {
    case 0x43:
      return { value: 0, next: at + 1 };
    case 0x52:
      return body.length > at + 1 ? { value: body[at + 1] ?? 0, next: at + 2 } : undefined;
    case 0x70:
      return body.length >= at + 5 ? { value: body.readUInt32BE(at + 1), next: at + 5 } : undefined;
    default:
      return undefined;
  }
}

/** The offset after the encoded value at `at`, or undefined when it runs past the end. */
function skip(body: Buffer, at: number): number | undefined {
  const constructor = body[at];
  if (constructor === undefined) return undefined;
  if (constructor === 0x00) {
    const afterDescriptor = skip(body, at + 1);
    return afterDescriptor === undefined ? undefined : skip(body, afterDescriptor);
  }
  const widthClass = constructor >> 4;
  const fixed: Record<number, number> = { 0x4: 0, 0x5: 1, 0x6: 2, 0x7: 4, 0x8: 8, 0x9: 16 };
  let next: number;
  if (widthClass in fixed) next = at + 1 + (fixed[widthClass] ?? 0);
  else if (widthClass === 0xa || widthClass === 0xc || widthClass === 0xe) next = at + 2 + (body[at + 1] ?? Infinity);
  else if ((widthClass === 0xb || widthClass === 0xd || widthClass === 0xf) && body.length >= at + 5) next = at + 5 + body.readUInt32BE(at + 1);
  else return undefined;
  return next <= body.length ? next : undefined;
}
