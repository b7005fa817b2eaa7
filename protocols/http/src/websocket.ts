import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { Errors, JSON_CONTENT_TYPE, silentLogger, type DpsError, type Logger } from '@opendps/model';
import { WebSocketServer, type PerMessageDeflateOptions, type WebSocket } from 'ws';
import { errorBody } from './responses';

/** The one WebSocket path every Azure IoT client hard-codes, MQTT and AMQP alike (docs/device-wire.md §5). */
export const WEBSOCKET_PATH = '/$iothub/websocket';

export type WebSocketHandler = (ws: WebSocket, req: IncomingMessage) => void;

export interface WebSocketUpgradeOptions {
  logger?: Logger;
  /** Largest WebSocket message accepted, after inflation (default 256 KiB; DPS bodies are at most 96 KiB). */
  maxPayload?: number;
  /** The clients offer permessage-deflate; allowed by default. */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
  /**
   * Page origins whose upgrades are accepted (docs/device-wire.md §5, "Browsers"); default: any.
   * Browsers always send `Origin` on an upgrade and the SDKs never do, so only browser pages are
   * checked; an upgrade without `Origin` passes.
   */
  allowedOrigins?: readonly string[];
}

export interface WebSocketUpgrade {
  /** For the HTTPS server's `upgrade` event. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

/**
 * Dispatches `/$iothub/websocket` upgrades by subprotocol (`mqtt`, `AMQPWSB10`; compared
 * case-insensitively). Anything else is answered with a coded DPS error on the raw socket.
 * Clients send no Authorization here: they authenticate inside MQTT CONNECT or AMQP SASL (docs/device-wire.md, trap 12).
 */
export function createWebSocketUpgrade(
  handlers: Record<string, WebSocketHandler>,
  options: WebSocketUpgradeOptions = {},
): WebSocketUpgrade {
  const logger = (options.logger ?? silentLogger).child({ category: 'DeviceOperations', transport: 'websocket' });
  const allowedOrigins = options.allowedOrigins?.includes('*') ? undefined : options.allowedOrigins?.map((origin) => origin.toLowerCase());
  const byProtocol = new Map(Object.entries(handlers).map(([protocol, handler]) => [protocol.toLowerCase(), handler]));
  const server = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxPayload ?? 256 * 1024,
    perMessageDeflate: options.perMessageDeflate ?? true,
    // Echo the client's own spelling of the chosen subprotocol, as the handshake requires.
    handleProtocols: (offered) => chooseProtocol([...offered], byProtocol) ?? false,
  });

  return {
    handleUpgrade(req, socket, head) {
      socket.on('error', (error) => logger.debug({ err: String(error) }, 'websocket socket error'));
      const origin = req.headers.origin;
      if (allowedOrigins && origin !== undefined && !allowedOrigins.includes(origin.toLowerCase())) {
        logger.info({ origin, remoteAddress: req.socket.remoteAddress }, 'websocket upgrade refused: origin not allowed');
        refuse(socket, Errors.originNotAllowed(`WebSocket upgrades from ${origin} are not allowed.`));
        return;
      }
      const refusal = refusalFor(req, byProtocol);
      if (refusal) {
        logger.debug({ url: req.url, errorCode: refusal.errorCode }, 'websocket upgrade refused');
        refuse(socket, refusal);
        return;
      }
      const protocol = chooseProtocol(offeredProtocols(req), byProtocol) ?? '';
      const handler = byProtocol.get(protocol.toLowerCase());
      server.handleUpgrade(req, socket, head, (ws) => {
        // A frame over maxPayload or a bad frame is emitted as 'error' (ws then closes with 1009/1002):
        // listen here so that it ends this one connection even if the handler does not listen.
        ws.on('error', (error) => logger.debug({ protocol, err: String(error) }, 'websocket closed on error'));
        try {
          handler?.(ws, req);
        } catch (error) {
          logger.error({ protocol, err: String(error) }, 'websocket handler failed');
          ws.close(1011);
        }
      });
    },
  };
}

function offeredProtocols(req: IncomingMessage): string[] {
  const header = req.headers['sec-websocket-protocol'];
  return (header ?? '')
    .split(',')
    .map((protocol) => protocol.trim())
    .filter((protocol) => protocol !== '');
}

function chooseProtocol(offered: string[], handlers: Map<string, WebSocketHandler>): string | undefined {
  return offered.find((protocol) => handlers.has(protocol.toLowerCase()));
}

function refusalFor(req: IncomingMessage, handlers: Map<string, WebSocketHandler>): DpsError | undefined {
  let pathname: string;
  try {
    pathname = decodeURIComponent(new URL(req.url ?? '/', 'https://upgrade.invalid').pathname);
  } catch {
    return Errors.invalidTopic('The upgrade path is not correctly percent-encoded.');
  }
  if (pathname !== WEBSOCKET_PATH) return Errors.notFound(`WebSockets are served at ${WEBSOCKET_PATH} only.`);
  if (req.method !== 'GET' || (req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
    return Errors.invalidHeader('Only a GET upgrade to websocket is accepted here.');
  }
  const offered = offeredProtocols(req);
  if (offered.length === 0) {
    return Errors.invalidHeader(`Sec-WebSocket-Protocol is required: one of ${[...handlers.keys()].join(', ')}.`);
  }
  if (!chooseProtocol(offered, handlers)) {
    return Errors.invalidHeader(`No supported subprotocol in '${offered.join(', ')}': one of ${[...handlers.keys()].join(', ')}.`);
  }
  return undefined;
}

/** An HTTP error response written on the raw socket, then closed (no upgrade happened). */
function refuse(socket: Duplex, error: DpsError): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify(errorBody(error));
  const head = [
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? 'Error'}`,
    `content-type: ${JSON_CONTENT_TYPE}`,
    `content-length: ${Buffer.byteLength(body)}`,
    `x-ms-error-code: ${error.errorCode}`,
    `x-ms-request-id: ${error.trackingId}`,
    'connection: close',
  ];
  socket.once('finish', () => socket.destroy());
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
}
