import { connect, type TLSSocket } from 'node:tls';

export interface SlowClientOptions {
  port: number;
  /** The CA that signed the server certificate. */
  ca: string;
  /** Sent at once after the handshake (e.g. a request line, or a whole header block). */
  opening: string;
  /** Then one of these every `everyMs` (default a header line `X-Slow-N: N\r\n`); never the end of the request. */
  trickle?: (n: number) => string;
  /** Default 50 ms. */
  everyMs?: number;
  /** The client gives up and closes after this long (default 1500 ms). */
  giveUpMs?: number;
}

export interface SlowClientResult {
  /** Whether the server closed the connection before the client gave up. */
  closedByServer: boolean;
  /** Everything the server sent. */
  answer: string;
  /** Trickled pieces sent before the end. */
  sent: number;
}

/**
 * A real TLS client that never finishes its request: it sends `opening`, then a little more every
 * `everyMs`, as a slow-header (slowloris) or slow-body client does, until the server closes the
 * connection or the client gives up.
 */
export function slowHttpClient(options: SlowClientOptions): Promise<SlowClientResult> {
  const trickle = options.trickle ?? ((n: number) => `X-Slow-${n}: ${n}\r\n`);
  return new Promise((resolve, reject) => {
    let answer = '';
    let sent = 0;
    let interval: NodeJS.Timeout | undefined;
    let settled = false;
    let secured = false;
    const finish = (closedByServer: boolean): void => {
      if (settled) return;
      settled = true;
      clearInterval(interval);
      clearTimeout(giveUp);
      socket.destroy();
      resolve({ closedByServer, answer, sent });
    };
    const socket: TLSSocket = connect({ host: '127.0.0.1', port: options.port, ca: options.ca, servername: 'localhost' }, () => {
      secured = true;
      if (options.opening) socket.write(options.opening);
      interval = setInterval(() => {
        if (socket.writable) socket.write(trickle(++sent));
      }, options.everyMs ?? 50);
    });
    const giveUp = setTimeout(() => finish(false), options.giveUpMs ?? 1500);
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
    socket.on('close', () => finish(true));
    // A reset once connected is the server closing ('close' follows); a failed handshake is a test bug.
    socket.on('error', (error) => {
      if (!secured && !settled) {
        settled = true;
        clearTimeout(giveUp);
        reject(error);
      }
    });
  });
}
