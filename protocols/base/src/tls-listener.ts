import type { Socket } from 'node:net';
import { createServer, type SecureContextOptions, type TLSSocket } from 'node:tls';
import type { Logger } from '@opendps/model';
import { ConnectionLimits, type ConnectionLimitsOptions } from './connection-limits';

export interface TlsListenOptions {
  port: number;
  host?: string;
  /** The server certificate and key (PEM); any other secure-context option passes through. */
  tls: SecureContextOptions & { cert: string | Buffer; key: string | Buffer };
  /** Open connections per source address and in all (defaults in connection-limits.ts). */
  connectionLimits?: ConnectionLimitsOptions;
  /** Told of every accepted TCP connection (the server's connection metrics). */
  onSocket?: (socket: Socket) => void;
}

export interface TlsListener {
  /** The port really bound (a free one when 0 was asked for). */
  port: number;
  /** Stops accepting and destroys every open connection. */
  close(): Promise<void>;
  /** Stops accepting new connections; open ones stay until `close`. */
  stopAccepting(): void;
  /** New handshakes use this certificate and key; established connections keep theirs. */
  setSecureContext(tls: TlsListenOptions['tls']): void;
  /** Open connections now. */
  readonly connections: number;
}

/**
 * A device-facing TLS listener. Client certificates are requested but never verified by the socket:
 * the chain is a proof the registration service checks against the enrollment.
 */
export async function listenTls(
  options: TlsListenOptions & { handshakeTimeoutMs: number; logger: Logger; name: string },
  onConnection: (socket: TLSSocket) => void,
): Promise<TlsListener> {
  const sockets = new Set<Socket>();
  const server = createServer(
    // noDelay: a small reply must not wait for the peer's delayed ACK (Nagle), ~40 ms per round trip.
    { ...options.tls, requestCert: true, rejectUnauthorized: false, handshakeTimeout: options.handshakeTimeoutMs, noDelay: true },
    onConnection,
  );
  const limits = new ConnectionLimits({ ...options.connectionLimits, logger: options.logger, name: options.name });
  limits.attach(server);
  // One 'close' listener for every socket (`this`): no closure held per connection (docs/scale.md).
  function forget(this: Socket): void {
    sockets.delete(this);
  }
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', forget);
    options.onSocket?.(socket);
  });
  // Node reports a failed or timed-out handshake here but leaves the TCP socket open (Node 20): a
  // client that connects and never finishes TLS would hold its connection forever. Close it.
  server.on('tlsClientError', (error, socket) => {
    options.logger.debug({ err: error.message }, 'TLS handshake failed');
    socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  options.logger.info({ port }, `${options.name} over TLS listening`);
  let closed: Promise<void> | undefined;
  const stopAccepting = (): Promise<void> =>
    (closed ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
    }));
  return {
    port,
    close: async () => {
      const done = stopAccepting();
      for (const socket of sockets) socket.destroy();
      limits.close();
      await done;
    },
    stopAccepting: () => void stopAccepting(),
    setSecureContext: (tls) => server.setSecureContext({ ...tls }),
    get connections() {
      return sockets.size;
    },
  };
}

/**
 * The TLS listeners one front-end opened, so that closing the front-end closes them all; a listener
 * closed on its own leaves the set.
 */
export class TlsListeners {
  private readonly open = new Set<TlsListener>();

  async listen(
    options: TlsListenOptions & { handshakeTimeoutMs: number; logger: Logger; name: string },
    onConnection: (socket: TLSSocket) => void,
  ): Promise<TlsListener> {
    const tls = await listenTls(options, onConnection);
    const listener: TlsListener = {
      port: tls.port,
      close: () => {
        this.open.delete(listener);
        return tls.close();
      },
      stopAccepting: () => tls.stopAccepting(),
      setSecureContext: (context) => tls.setSecureContext(context),
      get connections() {
        return tls.connections;
      },
    };
    this.open.add(listener);
    return listener;
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.open].map((listener) => listener.close()));
  }
}
