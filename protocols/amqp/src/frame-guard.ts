import { Duplex } from 'node:stream';
import { checkValues, EncodingError } from './amqp-encoding';

const HEADER = Buffer.from('AMQP', 'latin1');
/** The answer to a protocol header this server cannot speak (AMQP 1.0 §2.2): AMQP 1.0 over SASL. */
const SUPPORTED_HEADER = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0x03, 0x01, 0x00, 0x00]);
const BEGIN = 0x11;
const ATTACH = 0x12;
const TRANSFER = 0x14;
const TRANSFER_SYMBOL = 'amqp:transfer:list';
const AMQP_FRAME = 0x00;
const SASL_FRAME = 0x01;

export interface FrameLimits {
  /** Largest frame accepted (our Open's max-frame-size). */
  maxFrameBytes: number;
  /** Largest delivery accepted, summed over the frames of a multi-frame transfer. */
  maxDeliveryBytes: number;
  /** Sessions (begin) a connection may open over its life (default MAX_SESSIONS). */
  maxSessions?: number;
  /** Links (attach) a connection may open over its life (default MAX_LINKS). */
  maxLinks?: number;
}

/**
 * rhea keeps kilobytes per session and link, each opened by a frame of ~30 bytes (measured: 20,000
 * begins grew the heap ~90 times the bytes received). A DPS device needs one session and two links.
 */
export const MAX_SESSIONS = 4;
export const MAX_LINKS = 16;

/**
 * Sits between the socket and rhea and passes bytes on only as whole protocol headers and frames
 * within the limits. rhea would otherwise wait for any frame size a peer announces and concatenate
 * the frames of an unfinished delivery without bound, and it decodes whatever counts and nesting a
 * frame claims (see amqp-encoding.ts): a malformed or oversized frame costs one connection and never
 * the server's memory.
 */
export class FrameGuard extends Duplex {
  private buffer: Buffer = Buffer.alloc(0);
  /** The unfinished delivery on each `channel:handle`: its frames' bytes and its payload so far. */
  private readonly unfinished = new Map<string, { bytes: number; chunks: Buffer[] }>();
  /** A first whole unit (the client's protocol header) has passed. */
  private started = false;
  /** Answering a bad first header: nothing more is read. */
  private refusing = false;
  private sessions = 0;
  private links = 0;

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
      if (typeof unit !== 'number') {
        const error = new FrameRefusedError(unit.condition, unit.reason);
        if (!this.started && at === 0) this.refuseProtocol(error);
        else this.destroy(error);
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
  private refuseProtocol(error: FrameRefusedError): void {
    this.refusing = true;
    this.inner.end(SUPPORTED_HEADER, () => this.destroy(error));
  }

  /** The length of the complete header or frame at `at`, 0 when more bytes are needed, or a refusal. */
  private nextUnit(at: number): number | FrameRefusal {
    const available = this.buffer.length - at;
    if (available < 4) return 0;
    if (!this.started && at === 0 && !this.buffer.subarray(0, 4).equals(HEADER)) return framing('expected an AMQP protocol header');
    // A protocol header comes first, and again after SASL; as a frame size it would be ~1 GB.
    if (this.buffer.subarray(at, at + 4).equals(HEADER)) {
      if (available < 8) return 0;
      const [id, major, minor, revision] = this.buffer.subarray(at + 4, at + 8);
      if ((id !== 0 && id !== 3) || major !== 1 || minor !== 0 || revision !== 0) return framing('unsupported AMQP protocol header');
      return 8;
    }
    const size = this.buffer.readUInt32BE(at);
    if (size < 8) return framing(`malformed frame size ${size}`);
    if (size > this.limits.maxFrameBytes) return framing(`frame of ${size} bytes exceeds ${this.limits.maxFrameBytes}`);
    if (available < size) return 0;
    const frame = this.buffer.subarray(at, at + size);
    const dataOffset = (frame[4] ?? 0) * 4;
    if (dataOffset < 8 || dataOffset > size) return framing('malformed frame data offset');
    const type = frame[5] ?? 0;
    if (type !== AMQP_FRAME && type !== SASL_FRAME) return framing(`unknown frame type ${type}`);
    if (dataOffset === size) return size; // an empty frame: a heartbeat
    return this.checkBody(type, frame.readUInt16BE(6), frame.subarray(dataOffset), size);
  }

  /**
   * The performative must be one well-formed described value (AMQP 1.0 §2.3), followed by nothing
   * but a transfer's payload; a delivery's payload is checked once its last frame arrived.
   */
  private checkBody(type: number, channel: number, body: Buffer, size: number): number | FrameRefusal {
    if (body[0] !== 0x00) return decoding('the performative is not a described value');
    let end: number;
    try {
      end = checkValues(body, 0, body.length, 1);
    } catch (error) {
      if (error instanceof EncodingError) return decoding(`performative: ${error.message}`);
      throw error;
    }
    const opened = type === AMQP_FRAME ? this.countOpened(body) : undefined;
    if (opened) return opened;
    const transfer = type === AMQP_FRAME ? readTransfer(body) : null;
    if (transfer === undefined) return decoding('malformed transfer');
    if (transfer === null) return end === body.length ? size : decoding('bytes after the performative');
    return this.account(`${channel}:${transfer.handle}`, transfer.more, body.subarray(end), size);
  }

  /** Counts begins and attaches; refuses the one past the limit before rhea builds it. */
  private countOpened(body: Buffer): FrameRefusal | undefined {
    const code = readDescriptor(body, 1)?.code;
    const maxSessions = this.limits.maxSessions ?? MAX_SESSIONS;
    const maxLinks = this.limits.maxLinks ?? MAX_LINKS;
    if (code === BEGIN && ++this.sessions > maxSessions) return { condition: 'amqp:resource-limit-exceeded', reason: `more than ${maxSessions} sessions` };
    if (code === ATTACH && ++this.links > maxLinks) return { condition: 'amqp:resource-limit-exceeded', reason: `more than ${maxLinks} links` };
    return undefined;
  }

  /** Sums the frames of each unfinished delivery (`more` set), refuses one past the limit, checks the whole payload. */
  private account(key: string, more: boolean, payload: Buffer, size: number): number | FrameRefusal {
    const unfinished = this.unfinished.get(key);
    const total = (unfinished?.bytes ?? 0) + size;
    if (total > this.limits.maxDeliveryBytes) return { condition: 'amqp:link:message-size-exceeded', reason: `delivery of more than ${this.limits.maxDeliveryBytes} bytes` };
    if (more) {
      // A copy: a view would keep the whole receive buffer alive.
      this.unfinished.set(key, { bytes: total, chunks: [...(unfinished?.chunks ?? []), Buffer.from(payload)] });
      return size;
    }
    this.unfinished.delete(key);
    const whole = unfinished ? Buffer.concat([...unfinished.chunks, payload]) : payload;
    try {
      checkValues(whole);
    } catch (error) {
      if (error instanceof EncodingError) return decoding(`message: ${error.message}`);
      throw error;
    }
    return size;
  }
}

/** Why a connection was closed: an AMQP error condition (§2.8.15, §2.8.16) as its code, and a reason without wire bytes. */
export interface FrameRefusal {
  condition: string;
  reason: string;
}

/** The error a refused connection is destroyed with. */
export class FrameRefusedError extends Error {
  constructor(readonly condition: string, reason: string) {
    super(reason);
    this.name = 'FrameRefusedError';
  }
}

const framing = (reason: string): FrameRefusal => ({ condition: 'amqp:connection:framing-error', reason });
const decoding = (reason: string): FrameRefusal => ({ condition: 'amqp:decode-error', reason });

/**
 * The `handle` and `more` fields of a transfer performative (AMQP 1.0 §2.7.5), `null` for another
 * performative, `undefined` when the encoding is broken.
 */
export function readTransfer(body: Buffer): { handle: number; more: boolean } | null | undefined {
  if (body[0] !== 0x00) return undefined;
  const descriptor = readDescriptor(body, 1);
  if (!descriptor) return undefined;
  if (descriptor.code !== TRANSFER && descriptor.code !== TRANSFER_SYMBOL) return null;
  let at = descriptor.next;
  const list = body[at];
  let count: number;
  if (list === 0xc0 && body.length >= at + 3) {
    count = body[at + 2] ?? 0;
    at += 3;
  } else if (list === 0xd0 && body.length >= at + 9) {
    count = body.readUInt32BE(at + 5);
    at += 9;
  } else {
    return undefined; // list0 included: handle is mandatory
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
    try {
      at = checkValues(body, at, body.length, 1);
    } catch {
      return undefined;
    }
  }
  return { handle: handle.value, more };
}

/** A performative's descriptor (§1.5): a numeric code, or the symbolic name rhea accepts too. */
function readDescriptor(body: Buffer, at: number): { code: number | string; next: number } | undefined {
  switch (body[at]) {
    case 0x44:
      return { code: 0, next: at + 1 };
    case 0x53:
      return body.length > at + 1 ? { code: body[at + 1] ?? 0, next: at + 2 } : undefined;
    case 0x80:
      return body.length >= at + 9 ? { code: Number(body.readBigUInt64BE(at + 1)), next: at + 9 } : undefined;
    case 0xa3: {
      const end = at + 2 + (body[at + 1] ?? 0);
      return body.length >= end ? { code: body.toString('latin1', at + 2, end), next: end } : undefined;
    }
    default:
      return undefined;
  }
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
