import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { Errors, silentLogger, toDpsError, type Logger } from '@opendps/model';
import { refusalLogLevel, type RegistrationService } from '@opendps/registration';
import { connectionContext, endGracefully, TlsListeners, type TlsListener, type TlsListenOptions } from '@opendps/protocol-base';
import { createWebSocketStream, type WebSocket } from 'ws';
import { answer } from './exchange';
import { FrameGuard, FrameRefusedError } from './frame-guard';
import { allowOneNameForBothRoles, type SessionInternals } from './link-names';
import { apiVersionOf, attachRequestLink, attachResponseLink, namedDevice } from './links';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_MAX_MESSAGE_BYTES,
  IDLE_TIMEOUT_MS,
  MAX_FRAME_BYTES,
  type DpsAmqpFrontEndOptions,
} from './options';
import { decodeRequest } from './request';
import { openRefusal, rejection, responseMessage } from './response';
import { createContainer, refuseOpen, type Connection, type EventContext } from './rhea';
import { saslMechanisms } from './sasl';
import type { AmqpSession, ConnectionContext } from './session';

export type AmqpListenOptions = TlsListenOptions;
export type AmqpListener = TlsListener;

export interface DpsAmqpFrontEnd {
  /** Serve one AMQP byte stream (already decrypted) on behalf of `context`. */
  handleConnection(stream: Duplex, context: ConnectionContext): void;
  /** AMQP over TLS; client certificates are requested, and left to the registration service to verify. */
  listen(options: AmqpListenOptions): Promise<AmqpListener>;
  /** A `/$iothub/websocket` upgrade with subprotocol `AMQPWSB10` (docs/device-wire.md §5), from the HTTPS listener. */
  handleWebSocket(ws: WebSocket, request: IncomingMessage): void;
  /**
   * A drain, once every answer was sent: closes each connection with an AMQP close
   * (`amqp:connection:forced`), then ends it; what is still open after `lingerMs` is destroyed.
   */
  endConnections(lingerMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** Headers, properties and framing around a request body, on top of `maxMessageBytes`. */
const ENVELOPE_ALLOWANCE = 16 * 1024;
/** After we end a connection, the peer has this long to close its side. */
const LINGER_MS = 2_000;

/** The DPS AMQP front-end: a thin translator from DPS request messages onto the registration service. */
export function createDpsAmqpFrontEnd(options: DpsAmqpFrontEndOptions): DpsAmqpFrontEnd {
  const logger = (options.logger ?? silentLogger).child({ category: 'DeviceOperations', protocol: 'amqp' });
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const connectTimeout = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const containerId = `opendps-${randomUUID()}`;
  const streams = new Set<Duplex>();
  /** Each open connection's graceful close (drain). */
  const closers = new Map<Duplex, () => void>();
  const listeners = new TlsListeners();
  let closed = false;

  function handleConnection(stream: Duplex, context: ConnectionContext): void {
    if (closed) {
      stream.destroy();
      return;
    }
    const guard = new FrameGuard(stream, { maxFrameBytes: MAX_FRAME_BYTES, maxDeliveryBytes: maxMessageBytes + ENVELOPE_ALLOWANCE });
    const session: AmqpSession = { context };
    const connectionLogger = logger.child({ connection: randomUUID(), transport: context.transport });
    streams.add(guard);

    let ending = false;
    const end = (): void => {
      if (ending) return;
      ending = true;
      guard.end();
      setTimeout(() => guard.destroy(), LINGER_MS).unref();
    };
    const timer = setTimeout(() => {
      connectionLogger.info({}, 'AMQP connection not opened in time');
      guard.destroy();
    }, connectTimeout);

    const container = createContainer(containerId);
    container.sasl_server_mechanisms = saslMechanisms(
      { session, logger: connectionLogger, service: options.registration, refused: () => setImmediate(end) },
      options.tpm,
    );
    let disconnected = false;
    wire(container, session, connectionLogger, {
      opened(connection) {
        clearTimeout(timer);
        const chain = context.clientCertificateChain;
        // X.509 devices skip SASL altogether (docs/device-wire.md, trap 10): the TLS client certificate is the proof.
        if (!session.refusal && !session.identity && chain && chain.length > 0) session.identity = { proof: { kind: 'x509', chain } };
        if (!session.identity) {
          if (!session.refusal) connectionLogger.info({}, 'AMQP opened without SASL or a client certificate');
          // As DPS: our Open carries the error, Close follows (docs/device-wire.md §3).
          refuseOpen(connection, openRefusal(session.refusal ?? Errors.unauthorized()));
          guard.pause();
          setImmediate(end);
        }
      },
      disconnected() {
        disconnected = true;
      },
    });
    const connection = container
      .create_connection({
        container_id: containerId,
        max_frame_size: MAX_FRAME_BYTES,
        idle_time_out: IDLE_TIMEOUT_MS,
        reconnect: false,
        autoaccept: false,
        receiver_options: { autoaccept: false, credit_window: 10, max_message_size: maxMessageBytes + ENVELOPE_ALLOWANCE },
        // Every attach we answer carries max-message-size: the C SDK logs an error without it.
        sender_options: { max_message_size: maxMessageBytes + ENVELOPE_ALLOWANCE },
      })
      .accept(guard);

    guard.on('error', (error: Error) => {
      // A refused frame is named by its AMQP condition and a reason; wire bytes never reach the log.
      if (error instanceof FrameRefusedError) connectionLogger.info({ condition: error.condition, reason: error.message }, 'AMQP frame refused, connection closed');
      else connectionLogger.debug({ err: error.message }, 'AMQP connection closed on error');
    });
    closers.set(guard, () => {
      if (!connection.is_closed()) connection.close({ condition: 'amqp:connection:forced', description: 'the server is shutting down' });
      setImmediate(end);
    });
    guard.on('close', () => {
      clearTimeout(timer);
      streams.delete(guard);
      closers.delete(guard);
      // rhea learns of an 'end' or 'error' only; a plain destroy must reach it too, so its timers stop.
      if (!disconnected) connection.eof();
    });
  }

  interface Lifecycle {
    opened(connection: Connection): void;
    disconnected(): void;
  }

  /** The container's events are this one connection's: requests, links, errors. */
  function wire(container: ReturnType<typeof createContainer>, session: AmqpSession, log: Logger, lifecycle: Lifecycle): void {
    container.on('connection_open', (context: EventContext) => lifecycle.opened(context.connection));
    container.on('disconnected', () => lifecycle.disconnected());
    container.on('session_open', (context: EventContext) => {
      if (context.session) allowOneNameForBothRoles(context.session as SessionInternals);
    });
    container.on('sender_open', (context: EventContext) => {
      const sender = context.sender;
      if (!sender) return;
      const refusal = attachResponseLink(session, sender);
      if (refusal) {
        log.info({ link: sender.name, errorCode: refusal.errorCode }, 'receiver link refused');
        sender.close(rejection(refusal));
      }
    });
    container.on('receiver_open', (context: EventContext) => {
      const receiver = context.receiver;
      if (!receiver) return;
      const refusal = attachRequestLink(session, receiver);
      if (refusal) {
        log.info({ link: receiver.name, errorCode: refusal.errorCode }, 'sender link refused');
        receiver.close(rejection(refusal));
      }
    });
    container.on('message', (context: EventContext) => {
      void request(session, context, log);
    });
    // rhea emits 'error' for malformed input and unhandled peer errors; it then ends the socket.
    container.on('error', (error: unknown) => log.debug({ err: String(error) }, 'AMQP connection error'));
    container.on('protocol_error', (error: unknown) => log.debug({ err: String(error) }, 'AMQP protocol error'));
    container.on('connection_error', (context: EventContext) => log.debug({ err: String(context.error) }, 'AMQP connection failed'));
  }

  /** One request: decode, ask the service, answer on the client's receiver link or reject (docs/device-wire.md §3). */
  async function request(session: AmqpSession, context: EventContext, log: Logger): Promise<void> {
    const { message, delivery, receiver, connection } = context;
    if (!message || !delivery || !receiver) return;
    try {
      const device = namedDevice(session.identity);
      const sender = session.responseSender;
      if (!device || !sender || !sender.is_open()) {
        throw Errors.invalidTopic('Attach a receiver link on {idScope}/registrations/{registrationId} before sending requests.');
      }
      // The C SDK sends no properties section and takes the next message on its receiver link as
      // the answer: without a correlation_id we answer with the request's message_id, or with none.
      const correlationId = message.correlation_id ?? message.message_id ?? undefined;
      const apiVersion = apiVersionOf(receiver);
      const service: RegistrationService = options.registration;
      const response = await answer(
        { service, device, context: session.context, ...(apiVersion ? { apiVersion } : {}) },
        decodeRequest(message, maxMessageBytes),
      );
      if (connection.is_closed() || !sender.is_open()) return;
      delivery.accept();
      sender.send(responseMessage(correlationId, response));
    } catch (thrown) {
      const error = toDpsError(thrown);
      if (error !== thrown) log.error({ err: String(thrown) }, 'registration service failed');
      else log[refusalLogLevel(error)]({ registrationId: session.identity?.registrationId, errorCode: error.errorCode, reason: error.message }, 'device request refused');
      if (!connection.is_closed()) delivery.reject(rejection(error));
    }
  }

  function handleWebSocket(ws: WebSocket, request: IncomingMessage): void {
    if (ws.protocol && ws.protocol.toLowerCase() !== 'amqpwsb10') {
      ws.close(1002, 'subprotocol AMQPWSB10 expected');
      return;
    }
    // Binary messages are a byte stream: AMQP frames need not align with them (docs/device-wire.md §5).
    handleConnection(createWebSocketStream(ws), connectionContext(request.socket, 'amqp-ws'));
  }

  function listen(options: AmqpListenOptions): Promise<AmqpListener> {
    return listeners.listen({ ...options, handshakeTimeoutMs: connectTimeout, logger, name: 'AMQP' }, (socket) =>
      handleConnection(socket, connectionContext(socket, 'amqp')),
    );
  }

  async function endConnections(lingerMs = 1_000): Promise<void> {
    closed = true;
    await Promise.all([...closers].map(([stream, closeGracefully]) => endGracefully(stream, closeGracefully, lingerMs)));
  }

  async function close(): Promise<void> {
    closed = true;
    await listeners.closeAll();
    for (const stream of streams) stream.destroy();
  }

  return { handleConnection, listen, handleWebSocket, endConnections, close };
}
