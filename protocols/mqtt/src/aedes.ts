import type { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { endGracefully } from '@opendps/protocol-base';
import type { MqttParser } from './packet-size-guard';

/**
 * The slice of aedes this front-end uses, typed here: aedes ships as an ES module and this package
 * compiles to CommonJS, so its own declarations cannot be imported without an ESM type bridge.
 */
export interface PublishPacket {
  cmd: 'publish';
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  retain: boolean;
  dup: boolean;
  messageId?: number;
}

export interface Subscription {
  topic: string;
  qos: 0 | 1 | 2;
}

export interface ConnectPacket {
  clientId: string;
  clean: boolean;
  will?: unknown;
  protocolVersion: number;
}

export interface AedesClient extends EventEmitter {
  id: string;
  closed: boolean;
  publish(packet: PublishPacket, done?: (error?: Error) => void): void;
  close(done?: () => void): void;
}

/** An error aedes turns into a CONNACK return code (MQTT 3.1.1 §3.2.2.3). */
export type ConnectRefusal = Error & { returnCode: 2 | 3 | 4 | 5 };

export interface AedesHooks {
  preConnect(client: AedesClient, packet: ConnectPacket, done: (error: Error | null, ok: boolean) => void): void;
  authenticate(
    client: AedesClient,
    username: string | undefined,
    password: Buffer | undefined,
    done: (error: ConnectRefusal | null, ok: boolean | null) => void,
  ): void;
  authorizeSubscribe(client: AedesClient, sub: Subscription, done: (error: Error | null, sub?: Subscription | null) => void): void;
  authorizePublish(client: AedesClient | null, packet: PublishPacket, done: (error?: Error | null) => void): void;
}

export interface AedesOptions extends AedesHooks {
  connectTimeout: number;
  /** aedes' message router; see `noRouting`. */
  mq: unknown;
}

export interface AedesBroker extends EventEmitter {
  handle(stream: Duplex): AedesClient;
  close(done?: () => void): void;
}

interface AedesModule {
  Aedes: { createBroker(options: AedesOptions): Promise<AedesBroker> };
}

/**
 * Load aedes with Node's own loader (require(esm), Node >= 20.19). jest's module registry cannot
 * require an ES module, and `process.getBuiltinModule` reaches the real `node:module` under jest too.
 */
function loadAedes(): AedesModule {
  const { createRequire } = process.getBuiltinModule('node:module') as typeof import('node:module');
  return createRequire(__filename)('aedes') as AedesModule;
}

/** The mqtt-packet parser aedes gives each client (its `_parser`). */
export function parserOf(client: AedesClient): MqttParser {
  const parser = (client as unknown as { _parser?: MqttParser })._parser;
  if (!parser) throw new Error('aedes client without a parser');
  return parser;
}

type SubscribePacket = { cmd?: string; subscriptions?: Subscription[] };
/** One listener per QoS cap, shared by every connection. */
const qosCaps = new Map<0 | 1, (packet: SubscribePacket) => void>();

/**
 * [MQTT-3.8.4-5] a server may grant a lower QoS than requested. aedes records the granted QoS from
 * the SUBSCRIBE before `authorizeSubscribe` runs, so the cap is applied as the packet is decoded:
 * this listener runs ahead of aedes' own on the client's mqtt-packet parser.
 */
export function capSubscriptionQos(client: AedesClient, maxQos: 0 | 1): void {
  let cap = qosCaps.get(maxQos);
  if (!cap) {
    cap = (packet: SubscribePacket): void => {
      if (packet.cmd !== 'subscribe' || !Array.isArray(packet.subscriptions)) return;
      for (const subscription of packet.subscriptions) {
        if (subscription.qos > maxQos) subscription.qos = maxQos;
      }
    };
    qosCaps.set(maxQos, cap);
  }
  parserOf(client).prependListener('packet', cap);
}

/**
 * mqtt-packet's parser keeps the whole CONNECT as its settings for the connection's life, password
 * included, and reads only `protocolVersion` and `bridgeMode` from it: once the CONNECT is parsed,
 * those two are all it keeps (an idle connection's cost, docs/scale.md).
 */
export function releaseConnectOnConnack(client: AedesClient): void {
  const parser = (client as unknown as { _parser?: EventEmitter & { settings?: { protocolVersion?: number; bridgeMode?: boolean } } })._parser;
  if (!parser) return;
  const release = (packet: { cmd?: string }): void => {
    if (packet.cmd !== 'connect') return;
    parser.removeListener('packet', release);
    const settings = parser.settings;
    if (settings) parser.settings = { ...(settings.protocolVersion !== undefined ? { protocolVersion: settings.protocolVersion } : {}), ...(settings.bridgeMode ? { bridgeMode: true } : {}) };
  };
  parser.on('packet', release);
}

/**
 * mqtt-packet's parser buffers its input in a `bl` BufferListStream: a full Duplex stream (two
 * stream states, listeners, bound callbacks) used only as a list of buffers. `bl` ships the same
 * list without the stream (`BufferList`, the methods the parser calls: append, consume, slice,
 * readUInt8...); an idle connection keeps that instead (docs/scale.md). Left as it is when this
 * `bl` does not offer it.
 */
export function plainParserBuffer(client: AedesClient): void {
  const parser = (client as unknown as { _parser?: { _list?: { length: number; constructor: { BufferList?: new () => unknown } } } })._parser;
  const list = parser?._list;
  const Plain = list?.constructor.BufferList;
  if (!parser || !list || !Plain || list.length !== 0) return;
  parser._list = new Plain() as typeof list;
}

/**
 * aedes watches its stream with `stream.finished()` (seven listeners and their closures per
 * connection, for the connection's life) only to call `client.close()` once the stream is done.
 * aedes itself already closes the client on the stream's 'end' and 'error'; a 'close' listener
 * shared by every connection covers the rest (docs/scale.md).
 */
export function closeWithStream(client: AedesClient): void {
  const watched = client as unknown as { _eos?: () => void; conn?: Duplex & { closed?: boolean } };
  const conn = watched.conn;
  if (typeof watched._eos !== 'function' || !conn) return;
  watched._eos(); // finished()'s cleanup: its listeners are removed
  watched._eos = noop; // as aedes leaves it after close()
  if (conn.closed) client.close();
  else conn.on('close', closeClientOf);
}

/** `this` is the stream aedes was handed; aedes put its client on it (`conn.client`). */
function closeClientOf(this: Duplex & { client?: AedesClient }): void {
  this.client?.close();
}

function noop(): void {}

/** How long a client that sent DISCONNECT has to close its side before it is cut off. */
export const GOODBYE_LINGER_MS = 2_000;

type GoodbyeParser = MqttParser & { goodbyeStream?: Duplex };

/**
 * aedes destroys the connection when the client sends DISCONNECT [MQTT-3.14.4-2]. Destroying a
 * socket whose peer's close_notify and FIN are still unread makes the kernel answer with a reset,
 * and a client still reading (mqtt.js waits for our side to close) fails with ECONNRESET after a
 * successful exchange. So once a DISCONNECT is parsed, that one destroy becomes an end (close_notify,
 * FIN): the socket closes when the peer's FIN arrives, or is cut off after `lingerMs`. A listener
 * shared by every connection; only a connection that says goodbye pays for the rest.
 */
export function endAfterDisconnect(parser: MqttParser, stream: Duplex): void {
  (parser as GoodbyeParser).goodbyeStream = stream;
  parser.prependListener('packet', onGoodbye);
}

function onGoodbye(this: GoodbyeParser, packet: { cmd?: string }): void {
  const stream = this.goodbyeStream;
  if (packet.cmd !== 'disconnect' || !stream || stream.destroyed) return;
  this.goodbyeStream = undefined;
  const destroy = stream.destroy;
  stream.destroy = function (this: Duplex, error?: Error): Duplex {
    stream.destroy = destroy; // the linger's cut-off, and anything after, destroys for real
    if (error) return destroy.call(this, error);
    void endGracefully(stream, () => stream.end(), GOODBYE_LINGER_MS);
    return this;
  };
}

export function createBroker(options: AedesOptions): Promise<AedesBroker> {
  return loadAedes().Aedes.createBroker(options);
}

const later = (done?: () => void): void => {
  if (done) setImmediate(done);
};

/**
 * A message router that routes nothing. DPS is request/response: a device's publish is a request
 * answered on its own connection only (`client.publish`), so nothing a device sends may ever reach
 * another device's subscription.
 */
export const noRouting = {
  on: (_topic: string, _notify: unknown, done?: () => void): void => later(done),
  removeListener: (_topic: string, _notify: unknown, done?: () => void): void => later(done),
  emit: (_packet: unknown, done?: () => void): void => later(done),
  close: (done?: () => void): void => later(done),
};
