import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TlsOptions } from 'node:tls';
import { Errors, httpServerTimeouts, toDpsError, type HttpTimeouts, type Logger } from '@opendps/model';
import { ConnectionLimits, type ConnectionLimitsOptions } from '@opendps/protocol-base';
import type { Listener } from '../lifecycle';
import { sendDpsError } from './dps-error-response';
import type { Route, UpgradeListener } from './route';

/** `HttpTimeouts` bound every request and WebSocket upgrade request; a silent connection gets the headers timeout. */
export interface HttpsListenerOptions extends HttpTimeouts {
  port: number;
  /** Bind address; default: every interface (devices reach `--host` from elsewhere). */
  bindAddress?: string;
  key: string;
  cert: string;
  /** Certificates by TLS server name (the hubs served here); default: `cert` for every name. */
  SNICallback?: TlsOptions['SNICallback'];
  routes: readonly Route[];
  /** A client that has not finished its TLS handshake by then is dropped (default 10 s). */
  handshakeTimeoutMs?: number;
  /** WebSocket upgrades (`/$iothub/websocket`, dispatched by subprotocol); without it every upgrade is refused. */
  upgrade?: UpgradeListener;
  logger: Logger;
  /** Open connections per source address and in all, WebSockets included (defaults in protocol-base). */
  connectionLimits?: ConnectionLimitsOptions;
}

/**
 * The one HTTPS listener. TLS asks for a client certificate but does not reject any: X.509 devices
 * present theirs here and attestation decides (requestCert without rejectUnauthorized).
 * Routes are tried in order; nothing matching is a DPS 404.
 */
export function createHttpsListener(
  options: HttpsListenerOptions,
): Listener & { readonly server: Server; setTls(tls: { cert: string; key: string }): void; stopAccepting(): void } {
  const server = createServer(
    {
      key: options.key,
      cert: options.cert,
      ...(options.SNICallback ? { SNICallback: options.SNICallback } : {}),
      requestCert: true,
      rejectUnauthorized: false,
      handshakeTimeout: options.handshakeTimeoutMs ?? 10_000,
      // Node's https default, stated because every reply (and WebSocket frame) relies on it: no Nagle delay.
      noDelay: true,
      ...httpServerTimeouts(options),
    },
    (req, res) => void dispatch(req, res),
  );
  server.on('upgrade', upgrade);
  // At TCP accept, before TLS: a connection over a limit costs no handshake.
  const limits = new ConnectionLimits({ ...options.connectionLimits, logger: options.logger, name: 'HTTPS' });
  limits.attach(server);
  // Node reports a failed or timed-out handshake but leaves the socket open: close it.
  server.on('tlsClientError', (error: Error, socket) => {
    options.logger.debug({ err: error.message }, 'TLS handshake failed');
    socket.destroy();
  });

  async function dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const pathname = pathOf(req.url);
    const route = options.routes.find((candidate) => candidate.matches(pathname, req));
    try {
      if (!route) throw Errors.notFound(`No resource at ${req.method ?? 'GET'} ${pathname}.`);
      await route.handle(req, res);
    } catch (error) {
      const dpsError = toDpsError(error);
      if (dpsError.status >= 500) options.logger.error({ err: (error as Error).message, path: pathname }, 'request failed');
      if (!res.headersSent) sendDpsError(res, dpsError);
      else res.destroy();
    }
  }

  function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (options.upgrade) return options.upgrade(req, socket, head);
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  }

  return {
    name: 'https',
    server,
    setTls: (tls) => server.setSecureContext({ ...tls }),
    // In-flight requests finish; keep-alive connections close once idle (Node closes them after
    // their response when the server is closing).
    stopAccepting: () => {
      if (server.listening) server.close();
      server.closeIdleConnections();
    },
    start: () =>
      new Promise<number>((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.port, options.bindAddress, () => {
          server.off('error', reject);
          resolve((server.address() as AddressInfo).port);
        });
      }),
    stop: () =>
      new Promise<void>((resolve, reject) => {
        limits.close();
        server.closeAllConnections();
        if (!server.listening) return resolve();
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

function pathOf(url: string | undefined): string {
  const raw = url ?? '/';
  const query = raw.indexOf('?');
  return query === -1 ? raw : raw.slice(0, query);
}
