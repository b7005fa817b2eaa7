import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * One part of the shared HTTPS listener (docs/architecture.md: the device REST API, the service API and
 * the admin API share one port). The server asks each route in turn whether it claims a pathname.
 */
export interface HttpRoute {
  matches(pathname: string): boolean;
  /** Answers the request completely; never rejects. */
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
}
