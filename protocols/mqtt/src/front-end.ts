import { silentLogger } from '@opendps/model';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { connectionContext, DeadlineQueue, endGracefully, realTimers, TlsListeners, type TlsListener, type TlsListenOptions } from '@opendps/protocol-base';
import { createWebSocketStream, type WebSocket } from 'ws';
import { capSubscriptionQos, closeWithStream, createBroker, endAfterDisconnect, noRouting, parserOf, plainParserBuffer, releaseConnectOnConnack, type AedesBroker, type AedesClient } from './aedes';
import { DpsConnection } from './connection';
import { peekConnect } from './connect-peek';
import { createHooks } from './hooks';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_MAX_PACKET_BYTES,
  DEFAULT_REFUSAL_GRACE_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  TOPIC_ALLOWANCE,
  type DpsMqttFrontEndOptions,
} from './options';
import { guardParserInput } from './packet-size-guard';
import type { ConnectionContext, DeviceSession } from './session';

export type MqttListenOptions = TlsListenOptions;
export type MqttListener = TlsListener;

export interface DpsMqttFrontEnd {
  /** Serve one MQTT byte stream (already decrypted) on behalf of `context`. */
  handleConnection(stream: Duplex, context: ConnectionContext): void;
  /** MQTT over TLS; client certificates are requested, and left to the registration service to verify. */
  listen(options: MqttListenOptions): Promise<MqttListener>;
  /** A `/$iothub/websocket` upgrade with subprotocol `mqtt` (docs/device-wire.md §5), from the HTTPS listener. */
  handleWebSocket(ws: WebSocket, request: IncomingMessage): void;
  /**
   * A drain, once every answer was sent: ends each connection after what it was sent (MQTT 3.1.1
   * has no server DISCONNECT), destroying what is still open after `lingerMs`. New ones are refused.
   */
  endConnections(lingerMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** The DPS MQTT front-end: a thin translator from `$dps/registrations/...` onto the registration service. */
export function createDpsMqttFrontEnd(options: DpsMqttFrontEndOptions): DpsMqttFrontEnd {
  const logger = (options.logger ?? silentLogger).child({ category: 'DeviceOperations', protocol: 'mqtt' });
  const maxPayloadBytes = options.maxPacketBytes ?? DEFAULT_MAX_PACKET_BYTES;
  const connectTimeout = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const timers = options.timers ?? realTimers;
  const settings = {
    logger,
    timers,
    deadlines: new DeadlineQueue(timers),
    requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    refusalGraceMs: options.refusalGraceMs ?? DEFAULT_REFUSAL_GRACE_MS,
  };
  const sessions = new WeakMap<AedesClient, DeviceSession>();
  const listeners = new TlsListeners();
  /** Every open DPS connection, by its stream (a drain ends them). */
  const connections = new Map<Duplex, DpsConnection>();
  let closed = false;

  let broker: AedesBroker | undefined;
  const brokerReady: Promise<AedesBroker> = createBroker({
    ...createHooks({ service: options.registration, sessions, maxPayloadBytes, logger }),
    connectTimeout,
    mq: noRouting,
  }).then((ready) => {
    ready.on('error', (error: unknown) => logger.error({ err: error }, 'MQTT broker error'));
    ready.on('clientError', (_client: unknown, error: Error) => logger.debug({ err: error.message }, 'MQTT connection closed on error'));
    ready.on('connectionError', (_client: unknown, error: Error) => logger.debug({ err: error.message }, 'MQTT connection closed before CONNECT'));
    broker = ready;
    return ready;
  });

  /** A 'close' listener shared by every connection (`this` is the stream): no closure per connection. */
  function forget(this: Duplex): void {
    connections.get(this)?.deadline.stop();
    connections.delete(this);
  }

  function handleConnection(stream: Duplex, context: ConnectionContext): void {
    if (closed) {
      stream.destroy();
      return;
    }
    const route = options.route;
    if (!route) return serveDps(stream, context);
    // Hub devices share this listener: their CONNECT names the hub, not an ID scope.
    peekConnect(stream, connectTimeout, (connect) => {
      const elsewhere = connect && route(connect);
      if (elsewhere) elsewhere(stream, context);
      else serveDps(stream, context);
    });
  }

  function serveDps(stream: Duplex, context: ConnectionContext): void {
    const connection = new DpsConnection(stream, context, settings);
    connections.set(stream, connection);
    stream.on('close', forget);
    if (broker) return attach(broker, connection);
    // Until the broker is up (the first moments after start) what arrives waits in the stream, and
    // its errors end it here; the connect timeout already runs.
    const early = (error: Error): void => logger.debug({ err: error.message }, 'MQTT connection failed before the broker was up');
    stream.on('error', early);
    const timer = setTimeout(() => stream.destroy(new Error('connect did not arrive in time')), connectTimeout);
    brokerReady.then(
      (ready) => {
        clearTimeout(timer);
        stream.off('error', early);
        if (!stream.destroyed) attach(ready, connection);
      },
      () => {
        clearTimeout(timer);
        stream.destroy();
      },
    );
  }

  /**
   * aedes reads the stream itself (no stream in between); the packet size limit is a check on its
   * parser's input, installed before the first byte is parsed (aedes reads on 'readable', later).
   */
  function attach(ready: AedesBroker, connection: DpsConnection): void {
    const client = ready.handle(connection.stream);
    closeWithStream(client);
    guardParserInput(parserOf(client), maxPayloadBytes + TOPIC_ALLOWANCE);
    endAfterDisconnect(parserOf(client), connection.stream);
    plainParserBuffer(client);
    capSubscriptionQos(client, 1);
    releaseConnectOnConnack(client);
    sessions.set(client, connection);
  }

  function handleWebSocket(ws: WebSocket, request: IncomingMessage): void {
    if (ws.protocol && ws.protocol.toLowerCase() !== 'mqtt') {
      ws.close(1002, 'subprotocol mqtt expected');
      return;
    }
    const stream = createWebSocketStream(ws);
    stream._writev = oneMessage;
    handleConnection(stream, connectionContext(request.socket, 'mqtt-ws'));
  }

  function listen(options: MqttListenOptions): Promise<MqttListener> {
    return listeners.listen({ ...options, handshakeTimeoutMs: connectTimeout, logger, name: 'MQTT' }, (socket) =>
      handleConnection(socket, connectionContext(socket, 'mqtt')),
    );
  }

  async function endConnections(lingerMs = 1_000): Promise<void> {
    closed = true;
    await Promise.all([...connections.keys()].map((stream) => endGracefully(stream, () => stream.end(), lingerMs)));
  }

  async function close(): Promise<void> {
    closed = true;
    await listeners.closeAll();
    const ready = await brokerReady.catch(() => undefined);
    if (ready) await new Promise<void>((resolve) => ready.close(() => resolve()));
  }

  return { handleConnection, listen, handleWebSocket, endConnections, close };
}

/**
 * mqtt-packet corks the stream and writes a packet field by field; on uncork the pieces come here
 * together and leave as one WebSocket message (ws's stream would send one message per field). A
 * TLS socket needs no such help: Node writes the pieces it is given together in one TLS record.
 */
function oneMessage(this: Duplex, chunks: Array<{ chunk: Buffer }>, done: (error?: Error | null) => void): void {
  this._write(Buffer.concat(chunks.map(({ chunk }) => chunk)), 'buffer' as BufferEncoding, done);
}
