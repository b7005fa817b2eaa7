import type { Socket } from 'node:net';

/** The first byte of an MQTT CONNECT: packet type 1, flags 0 ([MQTT-2.2.2-2]). */
export const MQTT_CONNECT_FIRST_BYTE = 0x10;
/** A connection that sends nothing after its TLS handshake is closed after this long. */
const DEFAULT_FIRST_BYTE_TIMEOUT_MS = 30_000;

export interface FirstByteRoutes<S extends Socket> {
  mqtt(socket: S): void;
  http(socket: S): void;
}

/**
 * Reads what the client sends first on a (TLS) connection, puts it back, and hands the socket to
 * device MQTT when it begins with a CONNECT, else to HTTP. The bytes are read in paused mode and
 * unshifted, so the chosen protocol parses the stream from its first byte; a connection that closes
 * or stays silent before sending anything is dropped.
 */
export function dispatchByFirstByte<S extends Socket>(
  socket: S,
  routes: FirstByteRoutes<S>,
  timeoutMs = DEFAULT_FIRST_BYTE_TIMEOUT_MS,
): void {
  const timer = setTimeout(() => {
    cleanup();
    socket.destroy();
  }, timeoutMs);
  timer.unref();

  const onReadable = (): void => {
    const chunk = socket.read() as Buffer | string | null;
    if (chunk === null || chunk.length === 0) return;
    cleanup();
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    socket.unshift(bytes);
    if (bytes[0] === MQTT_CONNECT_FIRST_BYTE) routes.mqtt(socket);
    else routes.http(socket);
  };
  const onGone = (): void => cleanup();

  function cleanup(): void {
    clearTimeout(timer);
    socket.off('readable', onReadable);
    socket.off('close', onGone);
  }

  socket.on('readable', onReadable);
  socket.once('close', onGone);
}
