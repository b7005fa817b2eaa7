import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

/**
 * What plugs into the one HTTPS listener (as on Azure's port 443): request routes (service API,
 * device API, admin API) and WebSocket upgrades told apart by path and subprotocol.
 */
export interface Route {
  matches(pathname: string): boolean;
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
}

export interface UpgradeHandler {
  /** Matched case-insensitively against the request path without its query (`/$iothub/websocket`). */
  path: string;
  /** A `Sec-WebSocket-Protocol` value the client offers (`mqtt`, `AMQPWSB10`). */
  protocol: string;
  handle(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}
