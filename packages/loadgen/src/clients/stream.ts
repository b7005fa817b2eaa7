import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import WebSocket, { createWebSocketStream } from 'ws';
import { LoadgenError, type Credentials, type Endpoint } from './types';

/**
 * The byte stream a device speaks its protocol on: TLS straight to a listener, or a WebSocket to
 * `/$iothub/websocket` with the protocol's subprotocol (docs/device-wire.md §5). The certificate of an
 * X.509 device goes in the TLS handshake either way.
 */
export interface OpenedStream {
  stream: Duplex;
  tcpTlsMs: number;
}

export interface StreamOptions {
  endpoint: Endpoint;
  ca?: string | Buffer | undefined;
  credentials: Credentials;
  /** Set for WebSockets: `mqtt` or `AMQPWSB10`. */
  subprotocol?: string;
}

export function openStream(options: StreamOptions): Promise<OpenedStream> {
  return options.subprotocol ? openWebSocket(options, options.subprotocol) : openTls(options);
}

function tlsOptions(options: StreamOptions): tls.ConnectionOptions {
  const { host } = options.endpoint;
  return {
    ...(options.ca ? { ca: options.ca } : {}),
    ...(isIP(host) ? {} : { servername: host }),
    ...(options.credentials.cert ? { cert: options.credentials.cert, key: options.credentials.certKey } : {}),
  };
}

function openTls(options: StreamOptions): Promise<OpenedStream> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: options.endpoint.host, port: options.endpoint.port, ...tlsOptions(options) });
    socket.setNoDelay(true);
    const failed = (error: Error) => reject(connectionError(error));
    socket.once('error', failed);
    socket.once('secureConnect', () => {
      socket.off('error', failed);
      resolve({ stream: socket, tcpTlsMs: performance.now() - started });
    });
  });
}

function openWebSocket(options: StreamOptions, subprotocol: string): Promise<OpenedStream> {
  const started = performance.now();
  const { host, port } = options.endpoint;
  const url = `wss://${host.includes(':') ? `[${host}]` : host}:${port}/$iothub/websocket`;
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, subprotocol, { ...tlsOptions(options), perMessageDeflate: false });
    const failed = (error: Error) => reject(connectionError(error));
    socket.once('error', failed);
    socket.once('unexpected-response', (_request, response) => {
      socket.off('error', failed);
      reject(new LoadgenError(`ws-${response.statusCode ?? 0}`, `the WebSocket upgrade was answered ${response.statusCode}`));
      response.resume();
    });
    socket.once('open', () => {
      socket.off('error', failed);
      resolve({ stream: createWebSocketStream(socket), tcpTlsMs: performance.now() - started });
    });
  });
}

function connectionError(error: Error): LoadgenError {
  const code = (error as { code?: unknown }).code;
  return new LoadgenError(typeof code === 'string' ? code : 'connection', error.message);
}
