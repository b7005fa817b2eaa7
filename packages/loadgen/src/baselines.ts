import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import tls from 'node:tls';
import { create_container, message as amqpMessage, type Connection, type EventContext } from 'rhea';
import { WebSocketServer, createWebSocketStream, type WebSocket } from 'ws';
import { assignedBody, startBaselineBroker } from './baseline';

/**
 * The floors `pnpm bench` measures OpenDPS against, one per device protocol: the bare library each
 * front-end is built on, answering every register request at once with a fixed `assigned` body. No
 * attestation, no store, no hub. Each runs in a process of its own (`baseline-server.ts`).
 */
export type BaselineKind = 'mqtt' | 'amqp' | 'https' | 'ws';
export const BASELINE_KINDS: readonly BaselineKind[] = ['mqtt', 'amqp', 'https', 'ws'];

export interface RunningBaseline {
  port: number;
  close(): Promise<void>;
}

const HUB = 'baseline.invalid';
const HOST = '127.0.0.1';

export async function startBaseline(kind: BaselineKind, cert: string, key: string): Promise<RunningBaseline> {
  switch (kind) {
    case 'mqtt': {
      const broker = await startBaselineBroker({ cert, key, assignedHub: HUB });
      return { port: broker.port, close: () => broker.close() };
    }
    case 'amqp': {
      const amqp = amqpAnswerer();
      const server = tls.createServer({ cert, key }, (socket) => {
        socket.setNoDelay(true);
        amqp.accept(socket);
      });
      return listen(server, amqp.close);
    }
    case 'https': {
      const server = https.createServer({ cert, key }, (request, response) => {
        // PUT /{idScope}/registrations/{registrationId}/register
        const registrationId = decodeURIComponent(request.url?.split('/')[3] ?? 'unknown');
        request.resume();
        request.on('end', () => {
          const body = JSON.stringify(assignedBody(registrationId, 'https', HUB));
          response.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
          response.end(body);
        });
      });
      server.on('connection', (socket: Socket) => socket.setNoDelay(true));
      return listen(server);
    }
    case 'ws': {
      // MQTT and AMQP over WebSockets on one https server, told apart by subprotocol (docs/device-wire.md §5).
      const broker = await startBaselineBroker({ cert, key, assignedHub: HUB });
      const amqp = amqpAnswerer();
      const server = https.createServer({ cert, key }, (_request, response) => response.writeHead(404).end());
      server.on('connection', (socket: Socket) => socket.setNoDelay(true));
      const wss = new WebSocketServer({ server, perMessageDeflate: false, handleProtocols: (protocols) => [...protocols][0] ?? false });
      wss.on('connection', (socket) => {
        if (socket.protocol === 'mqtt') {
          const stream = createWebSocketStream(socket);
          stream.on('error', () => stream.destroy());
          broker.handle(stream);
        } else amqp.acceptWebSocket(socket);
      });
      return listen(server, async () => {
        for (const client of wss.clients) client.terminate();
        await amqp.close();
        await broker.close();
      });
    }
  }
}

function listen(server: tls.Server | https.Server, close: () => Promise<void> = async () => undefined): Promise<RunningBaseline> {
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('tlsClientError', () => undefined);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, () =>
      resolve({
        port: (server.address() as AddressInfo).port,
        async close() {
          for (const socket of sockets) socket.destroy();
          await new Promise<void>((done) => server.close(() => done()));
          await close();
        },
      }),
    );
  });
}

/** A bare rhea container: any SASL PLAIN is accepted, every register request answered on the client's receiver link. */
function amqpAnswerer(): { accept(socket: Socket): void; acceptWebSocket(socket: WebSocket): void; close(): Promise<void> } {
  const container = create_container({ id: 'baseline' });
  container.sasl_server_mechanisms.enable_plain(() => true);
  container.sasl_server_mechanisms.enable_anonymous();
  const connections = new Set<Connection>();
  container.on('connection_open', (context: EventContext) => {
    context.connection.open();
    connections.add(context.connection);
  });
  container.on('connection_close', (context: EventContext) => connections.delete(context.connection));
  container.on('disconnected', (context: EventContext) => connections.delete(context.connection));
  container.on('session_open', (context: EventContext) => context.session?.open());
  container.on('receiver_open', (context: EventContext) => context.receiver?.open());
  // The client's receiver, which our sender answers on: one per connection.
  container.on('sender_open', (context: EventContext) => context.sender?.open());
  container.on('message', (context: EventContext) => {
    const request = context.message;
    const sender = context.connection.find_sender(() => true);
    if (!request || !sender) return;
    const address = String((context.receiver?.target as { address?: string } | undefined)?.address ?? '');
    const registrationId = address.split('/')[2] ?? 'unknown';
    sender.send({
      correlation_id: request.correlation_id,
      content_type: 'application/json',
      body: amqpMessage.data_section(Buffer.from(JSON.stringify(assignedBody(registrationId, String(request.correlation_id), HUB)))),
    });
  });
  container.on('error', () => undefined);
  return {
    accept(socket) {
      socket.on('error', () => socket.destroy());
      container.create_connection({} as never).accept(socket);
    },
    acceptWebSocket(socket) {
      container.websocket_accept(socket as never, {} as never);
    },
    async close() {
      for (const connection of connections) connection.close();
    },
  };
}
