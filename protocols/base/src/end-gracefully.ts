import type { Duplex } from 'node:stream';

/**
 * Ends one connection cleanly for a drain: `closeGracefully` says goodbye in the protocol's own way
 * (MQTT: end the stream; AMQP: a close frame), and a peer that has not closed its side within
 * `lingerMs` is cut off. Resolves once the stream is closed.
 */
export function endGracefully(stream: Duplex, closeGracefully: () => void, lingerMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    if (stream.destroyed) return resolve();
    const timer = setTimeout(() => stream.destroy(), lingerMs);
    stream.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    closeGracefully();
  });
}
