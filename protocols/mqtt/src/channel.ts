import type { Duplex } from 'node:stream';
import type { ConnectRouter } from './options';
import type { Logger } from '@opendps/model';
import type { RegistrationService } from '@opendps/registration';
import { endGracefully, QueuedDeadline, type DeadlineQueue, type Timers } from '@opendps/protocol-base';
import { decodeFrame, readFrames, type FrameSink } from './frame-codec';
import { handle } from './handlers';
import { CLOSE_GRACE_MS, GOODBYE_LINGER_MS } from './options';
import { RequestDeadline } from './request-deadline';
import type { ConnectionContext, DeviceIdentity, DeviceSession } from './session';

/** What every connection of one front-end shares. */
export interface ChannelSettings {
  service: RegistrationService;
  logger: Logger;
  timers: Timers;
  /** Request deadlines, the connect timeout and keepalives of every connection. */
  deadlines: DeadlineQueue;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  refusalGraceMs: number;
  /** Largest request body: a larger one is answered 413. */
  maxPayloadBytes: number;
  /** Largest frame read at all: a larger one closes the connection. */
  maxPacketBytes: number;
  /** Another server for connections whose CONNECT names it (a built-in hub on this listener). */
  route?: ConnectRouter;
}

/** Where a connection goes when its CONNECT names another server. */
export type ConnectionHandler = (stream: Duplex, context: ConnectionContext) => void;

/** Where a connection is in its life. */
export enum Phase {
  /** Nothing but CONNECT may come [MQTT-3.1.0-1]. */
  AwaitingConnect,
  /** CONNECT read, its verdict pending (an X.509 chain is being judged): input waits. */
  Connecting,
  Connected,
  /** Ending (DISCONNECT, a refusal, a close): input is read and dropped. */
  Ending,
  /** Its CONNECT named another server: the stream, CONNECT included, goes there (see `handOver`). */
  HandedOver,
}

const EMPTY = Buffer.alloc(0);

/**
 * One device connection, MQTT side: its bytes come in through `receive` (the socket adapter), are
 * cut into frames and handled one packet at a time (handlers/index.ts); its packets go out through
 * `send`, one write each. Behaviour lives on the prototype and the connection is its own entry in
 * the shared deadline queue (connect timeout, then keepalive), so an idle connection holds this
 * object and its request deadline, and no closures or timers of its own (docs/scale.md).
 */
export class MqttChannel extends QueuedDeadline implements DeviceSession, FrameSink {
  phase = Phase.AwaitingConnect;
  device?: DeviceIdentity = undefined;
  responseQos: 0 | 1 = 0;
  readonly deadline: RequestDeadline;
  /** [MQTT-3.1.2-24] 1.5 times the CONNECT's keep alive, 0 for none. */
  keepaliveMs = 0;
  /** The bytes of a frame not complete yet. */
  private pending: Buffer | undefined = undefined;
  private lastMessageId = 0;
  /** Where the stream goes once handed over. */
  handler: ConnectionHandler | undefined = undefined;

  constructor(
    readonly stream: Duplex,
    readonly context: ConnectionContext,
    readonly settings: ChannelSettings,
  ) {
    super();
    this.deadline = new RequestDeadline(settings.requestTimeoutMs, settings.refusalGraceMs, settings.deadlines, this);
    settings.deadlines.arm(this, settings.connectTimeoutMs);
  }

  /** Bytes from the device: every whole frame in them is handled, in order, one at a time. */
  receive(chunk: Buffer): void {
    if (this.closing) return;
    const left = readFrames(this.pending, chunk, this.settings.maxPacketBytes, this);
    if (typeof left === 'string') return this.fail(left);
    this.pending = this.closing && this.phase !== Phase.HandedOver ? undefined : left;
  }

  /**
   * The CONNECT names another server (ConnectRouter): that frame is not taken, so it and all that
   * follows stay in `pending`, for the socket adapter to put back into the stream.
   */
  handOver(handler: ConnectionHandler): void {
    this.handler = handler;
    this.phase = Phase.HandedOver;
    this.settings.deadlines.disarm(this);
    this.deadline.stop();
  }

  /** What was read of a handed-over stream, from its CONNECT on. */
  takeInput(): Buffer | undefined {
    const input = this.pending;
    this.pending = undefined;
    return input;
  }

  /** One whole frame (FrameSink): handled now, or kept while CONNECT is judged. */
  take(frame: Buffer): boolean {
    if (!this.reading()) return false;
    const packet = decodeFrame(frame);
    if (packet instanceof Error) {
      this.fail(packet.message);
      return true;
    }
    try {
      handle(this, packet);
      if (this.phase === Phase.HandedOver) return false;
    } catch (error) {
      // A packet no handler foresaw costs its connection, never the process.
      this.settings.logger.error({ err: error, cmd: packet.cmd }, 'MQTT packet handling failed');
      this.fail('the packet could not be handled');
    }
    return true;
  }

  /** Ending: nothing more is read or answered. */
  get closing(): boolean {
    return this.phase >= Phase.Ending;
  }

  /** Whether the next frame may be handled now (not while CONNECT is judged, not once ending). */
  private reading(): boolean {
    return this.phase === Phase.AwaitingConnect || this.phase === Phase.Connected;
  }

  /** Holds the input while CONNECT is judged (input pauses; what was read waits here). */
  hold(): void {
    this.phase = Phase.Connecting;
    this.stream.pause();
  }

  /** CONNECT accepted: CONNACK went out; keepalive runs and what waited is handled. */
  connected(keepaliveSeconds: number): void {
    this.phase = Phase.Connected;
    this.keepaliveMs = keepaliveSeconds * 1500;
    this.refreshKeepalive();
    this.deadline.connected();
    this.receive(EMPTY);
    if (!this.closing) this.stream.resume();
  }

  /** Any packet from the device restarts its keepalive [MQTT-3.1.2-24]. */
  refreshKeepalive(): void {
    if (this.keepaliveMs > 0) this.settings.deadlines.arm(this, this.keepaliveMs);
    else this.settings.deadlines.disarm(this);
  }

  /** One packet, one write. Nothing is written once the connection is ending. */
  send(packet: Buffer): void {
    const stream = this.stream;
    if (stream.writableEnded || stream.destroyed) return;
    stream.write(packet);
  }

  /** The packet id of our next QoS 1 PUBLISH (1..65535, never 0 [MQTT-2.3.1-1]). */
  nextMessageId(): number {
    this.lastMessageId = (this.lastMessageId % 65_535) + 1;
    return this.lastMessageId;
  }

  /** A protocol violation or a broken frame: the connection is destroyed at once, as MQTT 3.1.1 has no error packet. */
  fail(reason: string): void {
    const before = this.phase !== Phase.Connected;
    this.end();
    this.settings.logger.debug({ err: reason }, before ? 'MQTT connection closed before CONNECT' : 'MQTT connection closed on error');
    this.stream.destroy();
  }

  /**
   * DISCONNECT [MQTT-3.14.4-2]. Destroying a socket whose peer's close_notify and FIN are still
   * unread makes the kernel answer with a reset, and a client still reading (mqtt.js waits for our
   * side to close) fails with ECONNRESET after a successful exchange. So the connection ends
   * (close_notify, FIN), closes when the peer's FIN arrives, and is cut off after the linger.
   */
  goodbye(): void {
    this.end();
    void endGracefully(this.stream, () => this.stream.end(), GOODBYE_LINGER_MS);
  }

  /** A CONNECT refused: its CONNACK goes out, then the connection ends. */
  refuse(connackPacket: Buffer): void {
    this.send(connackPacket);
    this.endAfterWrites();
  }

  /** Ends the connection once what was written has gone out, and logs why (a request deadline, a refused device). */
  close(reason: string): void {
    if (this.closing || this.stream.destroyed) return;
    this.settings.logger.info(
      { registrationId: this.device?.registrationId, remoteAddress: this.context.remoteAddress, transport: this.context.transport, reason },
      'closing the MQTT connection',
    );
    this.endAfterWrites();
  }

  /** The stream closed: nothing of this connection may run out any more. */
  closed(): void {
    this.end();
  }

  /** Called by the deadline queue: no CONNECT in time, or a keepalive missed. */
  expired(): void {
    this.fail(this.phase === Phase.Connected ? 'keep alive timeout' : 'connect did not arrive in time');
  }

  private endAfterWrites(): void {
    if (this.closing || this.stream.destroyed) return;
    this.end();
    const stream = this.stream;
    // end, not destroy: what was written (a refusal, a CONNACK) goes out before the FIN; reading
    // on (and dropping what comes) sees the peer's FIN
    stream.end();
    stream.resume();
    const cancel = this.settings.timers.schedule(CLOSE_GRACE_MS, () => stream.destroy());
    stream.once('close', cancel);
  }

  private end(): void {
    this.phase = Phase.Ending;
    this.pending = undefined;
    this.settings.deadlines.disarm(this);
    this.deadline.stop();
  }
}
