import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { Client } from 'aedes' with { 'resolution-mode': 'import' };
import { createAedes } from './aedes';

/**
 * The floor a DPS MQTT front-end is measured against: a bare aedes broker over TLS that answers every
 * register (and poll) publish at once with a fixed `200 assigned` body on the response topic, to that
 * client only. Same TLS, same client, same packets; no attestation, no storage, no hub.
 */
export interface BaselineOptions {
  /** Server certificate and key (PEM). */
  cert: string;
  key: string;
  /** The hub named in every answer. Default `baseline.invalid`. */
  assignedHub?: string;
  /**
   * Replaces the fixed answer (tests script 202/429/401 sequences with it). The default answers
   * `200 assigned` to everything.
   */
  answer?: (request: BaselineRequest) => BaselineAnswer;
  /** Optional CONNECT check (tests verify what devices send); default: accept everyone. */
  authenticate?: (clientId: string, username: string | undefined, password: Buffer | undefined) => boolean;
}

export interface BaselineRequest {
  clientId: string;
  kind: 'register' | 'poll';
  rid: string;
  /** Poll requests only. */
  operationId?: string;
  body: string;
}

export interface BaselineAnswer {
  statusCode: number;
  retryAfterSeconds?: number;
  /** Sent as JSON; a string is sent as is. */
  body: unknown;
}

export interface BaselineBroker {
  host: string;
  port: number;
  /** Register and poll requests answered so far. */
  readonly answered: number;
  /** Serve one more client on a stream of its own (MQTT over WebSockets). */
  handle(stream: Duplex): void;
  close(): Promise<void>;
}

const REQUEST_PATTERN = /^\$dps\/registrations\/(PUT\/iotdps-register|GET\/iotdps-get-operationstatus)\/\?(.*)$/;
const HOST = '127.0.0.1';

export async function startBaselineBroker(options: BaselineOptions): Promise<BaselineBroker> {
  const assignedHub = options.assignedHub ?? 'baseline.invalid';
  let answered = 0;
  const check = options.authenticate;
  const broker = await createAedes({
    authenticate: (client, username, password, done) => {
      if (!check || check(client.id, username, password)) return done(null, true);
      const error = Object.assign(new Error('Bad username or password'), { returnCode: 4 as const });
      done(error, false);
    },
    // Answer in the publish authorisation hook: the PUBACK is written right after the callback.
    authorizePublish: (client, packet, done) => {
      done(null);
      const match = client ? REQUEST_PATTERN.exec(packet.topic) : null;
      const query = new URLSearchParams(match?.[2] ?? '');
      const rid = query.get('$rid');
      if (!client || !match || rid === null) return;
      answered += 1;
      if (!options.answer) return send(client, rid, { statusCode: 200, body: assignedBody(client.id, rid, assignedHub) });
      const operationId = query.get('operationId');
      const request: BaselineRequest = {
        clientId: client.id,
        kind: match[1] === 'PUT/iotdps-register' ? 'register' : 'poll',
        rid,
        ...(operationId !== null ? { operationId } : {}),
        body: packet.payload.toString(),
      };
      send(client, rid, options.answer(request));
    },
  });

  const sockets = new Set<Socket>();
  // noDelay as OpenDPS's listeners: else the baseline stalls on Nagle (PUBACK then response: ~40 ms).
  const server = tls.createServer({ cert: options.cert, key: options.key, noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    broker.handle(socket);
  });
  // A failed handshake is the client's problem; keep serving everyone else.
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, () => resolve());
  });

  return {
    host: HOST,
    port: (server.address() as AddressInfo).port,
    get answered() {
      return answered;
    },
    handle: (stream) => broker.handle(stream as never),
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => broker.close(() => resolve()));
    },
  };
}

/** What real DPS answers a symmetric-key device it has just assigned (docs/device-wire.md §6). */
export function assignedBody(registrationId: string, rid: string, assignedHub: string): object {
  const now = new Date().toISOString();
  return {
    operationId: `baseline.${rid}`,
    status: 'assigned',
    registrationState: {
      registrationId,
      createdDateTimeUtc: now,
      assignedHub,
      deviceId: registrationId,
      status: 'assigned',
      substatus: 'initialAssignment',
      lastUpdatedDateTimeUtc: now,
      etag: '"baseline"',
    },
  };
}

function send(client: Client, rid: string, answer: BaselineAnswer): void {
  const retryAfter = answer.retryAfterSeconds !== undefined ? `&retry-after=${answer.retryAfterSeconds}` : '';
  const payload = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
  client.publish(
    {
      cmd: 'publish',
      topic: `$dps/registrations/res/${answer.statusCode}/?$rid=${rid}${retryAfter}`,
      payload: Buffer.from(payload, 'utf8'),
      qos: 0,
      retain: false,
      dup: false,
    },
    () => undefined,
  );
}
