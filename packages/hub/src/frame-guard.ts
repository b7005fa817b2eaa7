import type { Readable } from 'node:stream';
import { PacketSizeLimit } from '@opendps/model';

/**
 * Closes a connection as soon as an MQTT packet header announces more than `maxPacketBytes`, before
 * the parser buffers it (aedes has no packet size limit). It only observes: it is attached after
 * aedes' 'readable' listener, so 'data' fires for each chunk aedes reads without changing the flow.
 */
export function guardPacketSize(socket: Readable, maxPacketBytes: number, onOversize: () => void): void {
  const limit = new PacketSizeLimit(maxPacketBytes);
  socket.on('data', (chunk: Buffer) => {
    if (limit.inspect(chunk) !== undefined) onOversize();
  });
}
