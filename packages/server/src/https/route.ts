import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

/**
 * What plugs into the one HTTPS listener (as on Azure's port 443): request routes (service API,
 * device API, admin API) and WebSocket upgrades told apart by path and subprotocol.
 */
export interface Route {
  /** `req` lets a route also look at the Host header or the TLS socket (the hubs' REST API does). */
  matches(pathname: string, req?: IncomingMessage): boolean;
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
}

/** The listener's `upgrade` event: the device plane dispatches `/$iothub/websocket` by subprotocol. */
export type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
