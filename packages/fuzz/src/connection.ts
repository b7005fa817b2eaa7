import tls from 'node:tls';

export type ConnectionOutcome = 'closed' | 'timeout' | 'refused';

export interface ConnectionResult {
  outcome: ConnectionOutcome;
  /** HTTP answers with a 5xx status: malformed input deserves a coded 4xx, never an internal error. */
  serverErrors: number;
}

const STATUS_5XX = /HTTP\/1\.[01] 5\d\d /g;

/**
 * One fuzz connection: TLS to the listener, every frame written at once, then our half closed.
 * The server must close it; one that stays open past `timeoutMs` is destroyed and reported.
 */
export function sendConnection(host: string, port: number, ca: string, frames: Buffer[], timeoutMs: number): Promise<ConnectionResult> {
  return new Promise((resolve) => {
    let connected = false;
    let settled = false;
    let serverErrors = 0;
    let tail = '';
    const socket = tls.connect({ host, port, ca, servername: 'localhost' });
    const finish = (outcome: ConnectionOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ outcome, serverErrors });
    };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    socket.on('secureConnect', () => {
      connected = true;
      socket.end(Buffer.concat(frames));
    });
    socket.on('data', (chunk: Buffer) => {
      // A status line may straddle two chunks: keep the end of the last one.
      const text = tail + chunk.toString('latin1');
      serverErrors += text.match(STATUS_5XX)?.length ?? 0;
      tail = text.slice(-16).replace(/^.*HTTP\/1\.[01] 5\d\d /, '');
    });
    socket.on('error', () => finish(connected ? 'closed' : 'refused'));
    socket.on('close', () => finish(connected ? 'closed' : 'refused'));
  });
}
