import type { Readable } from 'node:stream';

/**
 * Closes a connection as soon as an MQTT packet header announces more than `maxPacketBytes`, before
 * the parser buffers it (aedes has no packet size limit). It only observes: it is attached after
 * aedes' 'readable' listener, so 'data' fires for each chunk aedes reads without changing the flow.
 */
export function guardPacketSize(socket: Readable, maxPacketBytes: number, onOversize: () => void): void {
  // Parser state: bytes of the current packet still to skip, or the header being read.
  let skip = 0;
  let header: number[] = [];
  socket.on('data', (chunk: Buffer) => {
    let offset = 0;
    while (offset < chunk.length) {
      if (skip > 0) {
        const take = Math.min(skip, chunk.length - offset);
        skip -= take;
        offset += take;
        continue;
      }
      header.push(chunk[offset] as number);
      offset += 1;
      if (header.length === 1) continue; // fixed header byte 1: packet type and flags
      const lengthByte = header[header.length - 1] as number;
      if (lengthByte & 0x80) {
        if (header.length === 5) return onOversize(); // [MQTT-2.2.3] at most four length bytes
        continue;
      }
      let remaining = 0;
      for (let i = header.length - 1; i >= 1; i--) remaining = remaining * 128 + ((header[i] as number) & 0x7f);
      header = [];
      if (remaining > maxPacketBytes) return onOversize();
      skip = remaining;
    }
  });
}
