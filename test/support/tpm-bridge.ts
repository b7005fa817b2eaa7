/**
 * Lets tss.js (the TPM stack of the unmodified `azure-iot-security-tpm`) talk to swtpm
 * (docs/tpm.md §7). tss.js speaks the Microsoft simulator ("mssim") protocol on two ports:
 * commands on P (a handshake, then `u32 8 ‖ u8 locality ‖ u32 length ‖ command`, answered
 * `u32 length ‖ response ‖ u32 0`) and platform signals on P + 1 (each `u32 signal`, answered `u32 0`).
 * swtpm's server port takes raw TPM commands over one connection at a time, so every command is
 * forwarded, in order, over one upstream connection, which `release()` drops before tpm2-tools run.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

const SEND_COMMAND = 8;
const HANDSHAKE = 15;
const SESSION_END = 20;
const STOP = 21;
const SERVER_VERSION = 1;
/** A TPM response header: u16 tag ‖ u32 size (whole response) ‖ u32 rc. */
const RESPONSE_HEADER = 10;
const MAX_COMMAND = 64 * 1024;

export interface TpmBridge {
  /** The mssim command port P; the platform port is P + 1 (tss.js hard-codes it). */
  port: number;
  /** Raw TPM commands forwarded so far (tests assert the SDK really used the TPM). */
  readonly commands: number;
  /** Drops the upstream connection so another swtpm client (tpm2-tools) can connect. */
  release(): Promise<void>;
  close(): Promise<void>;
}

const u32 = (value: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value >>> 0);
  return b;
};

export async function startTpmBridge(swtpmPort: number, swtpmHost = '127.0.0.1'): Promise<TpmBridge> {
  let upstream: Socket | undefined;
  let queue: Promise<unknown> = Promise.resolve();
  let commands = 0;
  const clients = new Set<Socket>();

  function openUpstream(): Promise<Socket> {
    if (upstream && !upstream.destroyed) return Promise.resolve(upstream);
    return new Promise((resolve, reject) => {
      const socket = connect(swtpmPort, swtpmHost, () => {
        socket.off('error', reject);
        upstream = socket;
        resolve(socket);
      });
      socket.once('error', reject);
      socket.on('close', () => {
        if (upstream === socket) upstream = undefined;
      });
    });
  }

  /** One raw command to swtpm and its whole response, sized by the response header. */
  function transmit(command: Buffer): Promise<Buffer> {
    const run = async () => {
      const socket = await openUpstream();
      return new Promise<Buffer>((resolve, reject) => {
        let received = Buffer.alloc(0);
        const onData = (chunk: Buffer) => {
          received = Buffer.concat([received, chunk]);
          if (received.length < RESPONSE_HEADER) return;
          const size = received.readUInt32BE(2);
          if (received.length < size) return;
          cleanup();
          if (received.length > size) reject(new Error(`swtpm sent ${received.length - size} bytes beyond its response`));
          else resolve(received);
        };
        const onClose = () => {
          cleanup();
          reject(new Error('swtpm closed the connection mid-command'));
        };
        const cleanup = () => {
          socket.off('data', onData);
          socket.off('close', onClose);
          socket.off('error', onClose);
        };
        socket.on('data', onData);
        socket.once('close', onClose);
        socket.once('error', onClose);
        commands++;
        socket.write(command);
      });
    };
    const result = queue.then(run, run);
    queue = result.catch(() => undefined);
    return result;
  }

  /** The command port: handshake, then SEND_COMMAND frames, one in flight at a time. */
  function serveCommands(client: Socket): void {
    let buffer = Buffer.alloc(0);
    let busy = false;
    const pump = async () => {
      if (busy) return;
      busy = true;
      try {
        while (buffer.length >= 4) {
          const code = buffer.readUInt32BE(0);
          if (code === HANDSHAKE) {
            if (buffer.length < 8) break;
            buffer = buffer.subarray(8);
            client.write(Buffer.concat([u32(SERVER_VERSION), u32(0), u32(0)]));
          } else if (code === SEND_COMMAND) {
            if (buffer.length < 9) break;
            const length = buffer.readUInt32BE(5);
            if (length > MAX_COMMAND) throw new Error(`a ${length}-byte TPM command`);
            if (buffer.length < 9 + length) break;
            const command = Buffer.from(buffer.subarray(9, 9 + length));
            buffer = buffer.subarray(9 + length);
            const response = await transmit(command);
            // One write: tss.js reads the length from the first chunk it gets.
            client.write(Buffer.concat([u32(response.length), response, u32(0)]));
          } else if (code === SESSION_END || code === STOP) {
            client.end();
            return;
          } else {
            throw new Error(`unsupported simulator command ${code}`);
          }
        }
      } catch {
        client.destroy();
      } finally {
        busy = false;
      }
      if (buffer.length >= 4 && !client.destroyed) void pump();
    };
    client.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      void pump();
    });
  }

  /** The platform port: power and NV signals; swtpm runs with not-need-init,startup-clear, so each is acknowledged alone. */
  function servePlatform(client: Socket): void {
    let buffer = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      while (buffer.length >= 4) {
        buffer = buffer.subarray(4);
        client.write(u32(0));
      }
    });
  }

  const track = (serve: (socket: Socket) => void) => (socket: Socket) => {
    clients.add(socket);
    socket.on('close', () => clients.delete(socket));
    socket.on('error', () => socket.destroy());
    serve(socket);
  };
  const commandServer = createServer(track(serveCommands));
  const platformServer = createServer(track(servePlatform));
  const port = await listenPair(commandServer, platformServer);

  const release = async () => {
    await queue;
    const socket = upstream;
    upstream = undefined;
    if (socket && !socket.destroyed) await new Promise<void>((resolve) => socket.end(resolve));
  };
  return {
    port,
    get commands() {
      return commands;
    },
    release,
    close: async () => {
      for (const socket of clients) socket.destroy();
      await Promise.all([closeServer(commandServer), closeServer(platformServer)]);
      upstream?.destroy();
    },
  };
}

/** P and P + 1, both free (tss.js connects to port + 1 for the platform). */
async function listenPair(command: Server, platform: Server): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    await listen(command, 0);
    const port = (command.address() as { port: number }).port;
    if (port < 65535 && (await listen(platform, port + 1).then(() => true, () => false))) return port;
    await closeServer(command);
  }
  throw new Error('no free pair of ports for the TPM bridge');
}

function listen(server: Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once('error', onError);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', onError);
      resolve();
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
}
