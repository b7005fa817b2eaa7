import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { create_container, message as amqpMessage, type Connection, type EventContext, type Message } from 'rhea';
import { API_VERSION, CLIENT_VERSION, dpsToken, registerBody, registrationResource } from './sas';
import { openStream } from './stream';
import { LoadgenError, type Answer, type ClientTarget, type Credentials, type Opened } from './types';

/**
 * DPS over AMQP 1.0, TLS or WebSockets (docs/device-wire.md §3): SASL PLAIN with the SAS for symmetric
 * keys, no SASL at all for X.509 (docs/device-wire.md, trap 10), a receiver then a sender on the registration's address.
 * rhea is handed the stream this module opened, so the TLS handshake is timed on its own.
 */
const LINK_PROPERTIES = { 'com.microsoft:api-version': API_VERSION, 'com.microsoft:client-version': CLIENT_VERSION };
/** Rejections the Node client retries after the delay; the rest are final (§6). */
const RETRIED: Record<string, number> = { 'com.microsoft:device-container-throttled': 429, 'amqp:internal-error': 500 };

export async function openAmqp(target: ClientTarget, credentials: Credentials, webSocket: boolean): Promise<Opened> {
  const endpoint = webSocket ? target.https : target.amqp;
  const { stream, tcpTlsMs } = await openStream({ endpoint, ca: target.ca, credentials, ...(webSocket ? { subprotocol: 'AMQPWSB10' } : {}) });
  const connectStarted = performance.now();
  const { registrationId } = credentials;
  const address = registrationResource(target.idScope, registrationId);
  const container = create_container({ id: `loadgen-${randomUUID()}` });
  let failure: LoadgenError | undefined;
  const failures = new Set<(error: LoadgenError) => void>();
  const fail = (error: LoadgenError) => {
    failure ??= error;
    for (const reject of failures) reject(error);
  };
  const guarded = <T>(work: (resolve: (value: T) => void, reject: (error: LoadgenError) => void) => void) =>
    new Promise<T>((resolve, reject) => {
      if (failure) return reject(failure);
      failures.add(reject);
      work(
        (value) => {
          failures.delete(reject);
          resolve(value);
        },
        (error) => {
          failures.delete(reject);
          reject(error);
        },
      );
    });

  const connection: Connection = container.connect({
    host: endpoint.host,
    port: endpoint.port,
    hostname: endpoint.host,
    reconnect: false,
    idle_time_out: 0,
    // The stream is already open: rhea only reads and writes it.
    connect: (_port: number, _host: string, _options: unknown, connected: () => void) => {
      process.nextTick(connected);
      return stream;
    },
    ...(credentials.key ? { username: address, password: dpsToken(target.idScope, registrationId, credentials.key) } : {}),
  } as never);
  const describe = (context: EventContext, fallback: string) => {
    const error = (context.connection?.error ?? context.error) as { condition?: string; description?: string; message?: string } | undefined;
    return new LoadgenError(error?.condition ?? fallback, error?.description ?? error?.message ?? fallback);
  };
  container.on('connection_error', (context: EventContext) => fail(describe(context, 'amqp-connection-error')));
  container.on('disconnected', (context: EventContext) => fail(describe(context, 'closed')));
  container.on('error', (error: Error) => fail(new LoadgenError('amqp-error', error.message)));

  try {
    await guarded<void>((resolve) => container.once('connection_open', () => resolve()));
    const receiver = connection.open_receiver({ source: { address }, properties: LINK_PROPERTIES, autoaccept: true } as never);
    await guarded<void>((resolve, reject) => {
      receiver.once('receiver_open', () => resolve());
      receiver.once('receiver_error', (context: EventContext) => reject(describe({ ...context, connection: { error: receiver.error } } as never, 'link-refused')));
    });
    const sender = connection.open_sender({ target: { address }, properties: LINK_PROPERTIES });
    await guarded<void>((resolve, reject) => {
      sender.once('sender_open', () => resolve());
      sender.once('sender_error', () => reject(new LoadgenError('link-refused', JSON.stringify(sender.error))));
    });
    const waiting = new Map<string, (answer: Answer) => void>();
    receiver.on('message', (context: EventContext) => {
      const message = context.message;
      if (!message) return;
      const deliver = waiting.get(String(message.correlation_id));
      if (!deliver) return;
      const properties = (message.application_properties ?? {}) as Record<string, unknown>;
      const retryAfter = Number(properties['retry-after']);
      deliver({ status: 200, ...(retryAfter >= 0 ? { retryAfterMs: retryAfter * 1000 } : {}), body: parseBody(message.body) });
    });
    const connectMs = performance.now() - connectStarted;
    return {
      tcpTlsMs,
      connectMs,
      session: {
        request(request) {
          const correlationId = randomUUID();
          const message: Message =
            request.kind === 'register'
              ? {
                  correlation_id: correlationId,
                  application_properties: { 'iotdps-operation-type': 'iotdps-register', 'iotdps-forceRegistration': false },
                  body: amqpMessage.data_section(Buffer.from(registerBody(registrationId, request.payload))),
                }
              : {
                  correlation_id: correlationId,
                  application_properties: { 'iotdps-operation-type': 'iotdps-get-operationstatus', 'iotdps-operation-id': request.operationId },
                  body: '',
                };
          return guarded<Answer>((resolve) => {
            waiting.set(correlationId, (answer) => {
              waiting.delete(correlationId);
              resolve(answer);
            });
            const delivery = sender.send(message);
            const onRejected = (context: EventContext) => {
              if (context.delivery !== delivery) return;
              sender.off('rejected', onRejected);
              waiting.delete(correlationId);
              const error = (context.delivery?.remote_state as { error?: { condition?: string; description?: string; info?: Record<string, unknown> } })?.error;
              const body = parseJson(error?.description);
              const retryAfter = Number(error?.info?.['retry-after']);
              const errorCode = Number((body as { errorCode?: unknown } | undefined)?.errorCode);
              const status = RETRIED[error?.condition ?? ''] ?? (errorCode >= 100_000 ? Math.floor(errorCode / 1000) : 400);
              resolve({ status, ...(retryAfter >= 0 ? { retryAfterMs: retryAfter * 1000 } : {}), body: body ?? { errorCode: error?.condition ?? 'rejected' } });
            };
            sender.on('rejected', onRejected);
          });
        },
        close: () => {
          failure ??= new LoadgenError('closed', 'closed');
          connection.close();
          // The close frame is enough; do not wait for the peer's.
          setImmediate(() => stream.destroy());
        },
        destroy: () => {
          failure ??= new LoadgenError('closed', 'closed');
          stream.destroy();
        },
      },
    };
  } catch (error) {
    stream.destroy();
    throw error;
  }
}

function parseBody(body: unknown): unknown {
  const content = (body as { content?: unknown } | undefined)?.content;
  if (Buffer.isBuffer(content)) return parseJson(content.toString('utf8'));
  return typeof body === 'string' ? parseJson(body) : body;
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
