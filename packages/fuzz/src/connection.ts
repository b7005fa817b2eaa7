import tls from 'node:tls';

export type ConnectionOutcome = 'closed' | 'timeout' | 'refused';

/**
 * One fuzz connection: TLS to the listener, every frame written at once, then our half closed.
 * The server must close it; one that stays open past `timeoutMs` is destroyed and reported.
 */
export function sendConnection(host: string, port: number, ca: string, frames: Buffer[], timeoutMs: number): Promise<ConnectionOutcome> {
  return new Promise((resolve) => {
    let connected = false;
    let settled = false;
    const socket = tls.connect({ host, port, ca, servername: 'localhost' });
    const finish = (outcome: ConnectionOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    socket.on('secureConnect', () => {
      connected = true;
      socket.end(Buffer.concat(frames));
    });
    socket.resume(); // answers are read and dropped
    socket.on('error', () => finish(connected ? 'closed' : 'refused'));
    socket.on('close', () => finish(connected ? 'closed' : 'refused'));
  });
}
