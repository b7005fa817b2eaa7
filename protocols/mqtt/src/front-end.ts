import { silentLogger } from '@opendps/model';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { connectionContext, DeadlineQueue, endGracefully, realTimers, TlsListeners, type TlsListener, type TlsListenOptions } from '@opendps/protocol-base';
import { createWebSocketStream, type WebSocket } from 'ws';
import { MqttChannel, type ChannelSettings } from './channel';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_MAX_PACKET_BYTES,
  DEFAULT_REFUSAL_GRACE_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  TOPIC_ALLOWANCE,
  type DpsMqttFrontEndOptions,
} from './options';
import type { ConnectionContext } from './session';
import { SocketAdapter } from './socket-adapter';

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
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const timers = options.timers ?? realTimers;
  const settings: ChannelSettings = {
    service: options.registration,
    logger,
    timers,
    deadlines: new DeadlineQueue(timers),
    connectTimeoutMs,
    requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    refusalGraceMs: options.refusalGraceMs ?? DEFAULT_REFUSAL_GRACE_MS,
    maxPayloadBytes,
    maxPacketBytes: maxPayloadBytes + TOPIC_ALLOWANCE,
    ...(options.route ? { route: options.route } : {}),
  };
  const listeners = new TlsListeners();
  const sockets = new SocketAdapter(logger);
  let closed = false;

  function handleConnection(stream: Duplex, context: ConnectionContext): void {
    if (closed) {
      stream.destroy();
      return;
    }
    if (stream.destroyed) return;
    // With `route`, the channel reads the CONNECT and may hand the stream on (handlers/connect.ts).
    sockets.attach(stream, new MqttChannel(stream, context, settings));
  }

  function handleWebSocket(ws: WebSocket, request: IncomingMessage): void {
    if (ws.protocol && ws.protocol.toLowerCase() !== 'mqtt') {
      ws.close(1002, 'subprotocol mqtt expected');
      return;
    }
    // Each packet is one write, so one WebSocket message.
    handleConnection(createWebSocketStream(ws), connectionContext(request.socket, 'mqtt-ws'));
  }

  function listen(options: MqttListenOptions): Promise<MqttListener> {
    return listeners.listen({ ...options, handshakeTimeoutMs: connectTimeoutMs, logger, name: 'MQTT' }, (socket) =>
      handleConnection(socket, connectionContext(socket, 'mqtt')),
    );
  }

  async function endConnections(lingerMs = 1_000): Promise<void> {
    closed = true;
    await Promise.all([...sockets.channels.keys()].map((stream) => endGracefully(stream, () => stream.end(), lingerMs)));
  }

  async function close(): Promise<void> {
    closed = true;
    await listeners.closeAll();
    for (const stream of sockets.channels.keys()) stream.destroy();
  }

  return { handleConnection, listen, handleWebSocket, endConnections, close };
}
