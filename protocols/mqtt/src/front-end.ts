import { silentLogger } from '@opendps/model';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { connectionContext, endGracefully, TlsListeners, type TlsListener, type TlsListenOptions } from '@opendps/protocol-base';
import { createWebSocketStream, type WebSocket } from 'ws';
import { capSubscriptionQos, createBroker, noRouting, releaseConnectOnConnack, type AedesBroker, type AedesClient } from './aedes';
import { peekConnect } from './connect-peek';
import { createHooks } from './hooks';
import {
  CLOSE_GRACE_MS,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_MAX_PACKET_BYTES,
  DEFAULT_REFUSAL_GRACE_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  TOPIC_ALLOWANCE,
  type DpsMqttFrontEndOptions,
} from './options';
import { PacketSizeGuard } from './packet-size-guard';
import { realSchedule, RequestDeadline } from './request-deadline';
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
  const requestTimeout = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const refusalGrace = options.refusalGraceMs ?? DEFAULT_REFUSAL_GRACE_MS;
  const schedule = options.schedule ?? realSchedule;
  const sessions = new WeakMap<AedesClient, DeviceSession>();
  const listeners = new TlsListeners();
  const streams = new Set<Duplex>();
  let closed = false;

  const brokerReady: Promise<AedesBroker> = createBroker({
    ...createHooks({ service: options.registration, sessions, maxPayloadBytes, logger }),
    connectTimeout,
    mq: noRouting,
  }).then((broker) => {
    broker.on('error', (error: unknown) => logger.error({ err: error }, 'MQTT broker error'));
    broker.on('clientError', (_client: unknown, error: Error) => logger.debug({ err: error.message }, 'MQTT connection closed on error'));
    broker.on('connectionError', (_client: unknown, error: Error) => logger.debug({ err: error.message }, 'MQTT connection closed before CONNECT'));
    return broker;
  });

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
    streams.add(stream);
    stream.once('close', () => streams.delete(stream));
    const guarded = new PacketSizeGuard(stream, maxPayloadBytes + TOPIC_ALLOWANCE);
    // Bytes already buffered (a peeked CONNECT, a WebSocket upgrade's head) reach the guard before the
    // broker attaches: its refusal must end this connection, not go unhandled and end the process.
    guarded.on('error', (error: Error) => logger.debug({ err: error.message }, 'MQTT connection closed by the packet size guard'));
    // Until the broker is up, the guard buffers what arrives; the connect timeout already runs.
    // Dropped once cleared: the listeners above share this scope and would keep it for the connection's life.
    let timer: NodeJS.Timeout | undefined = setTimeout(() => guarded.destroy(new Error('connect did not arrive in time')), connectTimeout);
    brokerReady.then(
      (broker) => {
        clearTimeout(timer);
        timer = undefined;
        if (guarded.destroyed) return;
        const client = broker.handle(guarded);
        capSubscriptionQos(client, 1);
        releaseConnectOnConnack(client);
        sessions.set(client, session(guarded, context));
      },
      () => guarded.destroy(),
    );
  }

  /** The session of one connection; its deadline and refusals end the connection through `close`. */
  function session(guarded: PacketSizeGuard, context: ConnectionContext): DeviceSession {
    const state: DeviceSession = {
      context,
      responseQos: 0,
      closing: false,
      deadline: new RequestDeadline(requestTimeout, refusalGrace, schedule, (reason) => state.close(reason)),
      close(reason) {
        if (state.closing || guarded.destroyed) return;
        state.closing = true;
        state.deadline.stop();
        logger.info(
          { registrationId: state.device?.registrationId, remoteAddress: context.remoteAddress, transport: context.transport, reason },
          'closing the MQTT connection',
        );
        // end, not destroy: what was written (the refusal's response) goes out before the FIN
        guarded.end();
        const cancel = schedule(CLOSE_GRACE_MS, () => guarded.destroy());
        guarded.once('close', cancel);
      },
    };
    guarded.once('close', () => state.deadline.stop());
    return state;
  }

  function handleWebSocket(ws: WebSocket, request: IncomingMessage): void {
    if (ws.protocol && ws.protocol.toLowerCase() !== 'mqtt') {
      ws.close(1002, 'subprotocol mqtt expected');
      return;
    }
    handleConnection(createWebSocketStream(ws), connectionContext(request.socket, 'mqtt-ws'));
  }

  function listen(options: MqttListenOptions): Promise<MqttListener> {
    return listeners.listen({ ...options, handshakeTimeoutMs: connectTimeout, logger, name: 'MQTT' }, (socket) =>
      handleConnection(socket, connectionContext(socket, 'mqtt')),
    );
  }

  async function endConnections(lingerMs = 1_000): Promise<void> {
    closed = true;
    await Promise.all([...streams].map((stream) => endGracefully(stream, () => stream.end(), lingerMs)));
  }

  async function close(): Promise<void> {
    closed = true;
    await listeners.closeAll();
    const broker = await brokerReady.catch(() => undefined);
    if (broker) await new Promise<void>((resolve) => broker.close(() => resolve()));
  }

  return { handleConnection, listen, handleWebSocket, endConnections, close };
}
