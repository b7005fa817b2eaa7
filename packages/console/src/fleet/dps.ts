/**
 * A simulated device registering with DPS from the browser, over MQTT/WS or AMQP/WS, on the same wire
 * as the Azure device SDKs (docs/device-wire.md §2, §3, §5). Each step is reported as it happens.
 */
import { dpsToken } from './device-keys';
import { MqttWsClient, text } from './mqtt-client';

export const DPS_API_VERSION = '2019-03-31';
const CLIENT_VERSION = 'opendps-console';
/** Polls wait what the server's retry-after says, within these bounds (seconds). */
const MIN_POLL_SECONDS = 1;
const MAX_POLL_SECONDS = 10;

export type Transport = 'mqtt' | 'amqp';

export interface RegisterRequest {
  /** `wss://{host}/$iothub/websocket` */
  url: string;
  /** The host name the AMQP Open names (the page's host). */
  hostname: string;
  idScope: string;
  registrationId: string;
  key: string;
  transport: Transport;
  onStep(step: string): void;
  signal: AbortSignal;
}

export interface Assignment {
  assignedHub: string;
  deviceId: string;
}

/** A refusal in DPS's words: its status, error code and message. */
export class RegistrationError extends Error {
  constructor(
    message: string,
    readonly errorCode?: number,
    readonly status?: number | string,
  ) {
    super(message);
  }
  describe(): string {
    const parts = [this.errorCode !== undefined ? `error ${this.errorCode}` : '', this.status !== undefined ? `status ${this.status}` : ''].filter(Boolean);
    return parts.length ? `${this.message} (${parts.join(', ')})` : this.message;
  }
}

interface Answer {
  /** HTTP-like status for MQTT; for AMQP 200/202 from the body's `status`. */
  status: number;
  retryAfter: number | undefined;
  body: Record<string, unknown>;
}

/** One request-answer exchange of a transport; `close` ends the connection. */
interface DpsChannel {
  exchange(kind: 'register' | 'poll', operationId?: string): Promise<Answer>;
  close(): void;
}

export async function register(request: RegisterRequest): Promise<Assignment> {
  request.onStep(`connecting over ${request.transport === 'mqtt' ? 'MQTT' : 'AMQP'}/WS`);
  const channel = request.transport === 'mqtt' ? await mqttChannel(request) : await amqpChannel(request);
  const abort = () => channel.close();
  request.signal.addEventListener('abort', abort);
  try {
    request.onStep('registering');
    let answer = await channel.exchange('register');
    for (let poll = 1; ; poll++) {
      const { body } = answer;
      if (answer.status >= 300) throw refusal(body, answer.status);
      if (body.status !== 'assigning') return outcome(body);
      const wait = Math.min(MAX_POLL_SECONDS, Math.max(MIN_POLL_SECONDS, answer.retryAfter ?? 2));
      request.onStep(`202 assigning, poll ${poll} in ${wait} s`);
      await delay(wait * 1000, request.signal);
      answer = await channel.exchange('poll', String(body.operationId));
    }
  } finally {
    request.signal.removeEventListener('abort', abort);
    channel.close();
  }
}

function outcome(body: Record<string, unknown>): Assignment {
  const state = (body.registrationState ?? {}) as Record<string, unknown>;
  if (body.status === 'assigned' && typeof state.assignedHub === 'string' && typeof state.deviceId === 'string') {
    return { assignedHub: state.assignedHub, deviceId: state.deviceId };
  }
  const code = Number(state.errorCode);
  const message = typeof state.errorMessage === 'string' ? state.errorMessage : `Registration ended ${String(body.status)}`;
  throw new RegistrationError(message, Number.isFinite(code) ? code : undefined, String(body.status));
}

function refusal(body: Record<string, unknown>, status: number | string): RegistrationError {
  const code = Number(body.errorCode);
  return new RegistrationError(String(body.message ?? body.Message ?? 'Registration refused'), Number.isFinite(code) ? code : undefined, status);
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Error('stopped'));
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(new Error('stopped'));
    }, { once: true });
  });
}

function parseJson(bytes: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(bytes);
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  } catch {
    return { message: `DPS answered with a body that is not JSON: ${bytes.slice(0, 80)}` };
  }
}

const DPS_ANSWER = /^\$dps\/registrations\/res\/(\d+)\/\?(.*)$/;

async function mqttChannel(request: RegisterRequest): Promise<DpsChannel> {
  const { idScope, registrationId } = request;
  const client = await MqttWsClient.connect({
    url: request.url,
    clientId: registrationId,
    clean: true,
    keepAlive: 0,
    username: `${idScope}/registrations/${registrationId}/api-version=${DPS_API_VERSION}&ClientVersion=${CLIENT_VERSION}`,
    password: await dpsToken(idScope, registrationId, request.key),
  });
  const granted = await client.subscribe([{ topic: '$dps/registrations/res/#', qos: 1 }]);
  if (granted[0] === 0x80) throw new RegistrationError('DPS refused the subscription to its response topic');
  let rid = 0;
  return {
    exchange(kind, operationId) {
      rid += 1;
      const id = String(rid);
      const topic =
        kind === 'register'
          ? `$dps/registrations/PUT/iotdps-register/?$rid=${id}`
          : `$dps/registrations/GET/iotdps-get-operationstatus/?$rid=${id}&operationId=${encodeURIComponent(operationId ?? '')}`;
      return new Promise<Answer>((resolve, reject) => {
        const off = () => {
          offMessage();
          offClose();
        };
        const offMessage = client.onMessage((answerTopic, payload) => {
          const match = DPS_ANSWER.exec(answerTopic);
          const params = new URLSearchParams(match?.[2] ?? '');
          if (!match || params.get('$rid') !== id) return;
          off();
          const retry = params.get('retry-after');
          resolve({ status: Number(match[1]), retryAfter: retry === null ? undefined : Number(retry), body: parseJson(text(payload)) });
        });
        const offClose = client.onClose((reason) => {
          off();
          reject(new RegistrationError(`The DPS connection closed (${reason})`));
        });
        const body = kind === 'register' ? JSON.stringify({ registrationId }) : ' ';
        client.publish(topic, body, 1).catch((error: Error) => {
          off();
          reject(error);
        });
      });
    },
    close: () => client.end(),
  };
}

async function amqpChannel(request: RegisterRequest): Promise<DpsChannel> {
  // rhea's browser bundle is only fetched with the fleet chunk, and only parsed when AMQP is chosen.
  const { default: rhea } = await import('rhea/dist/rhea-umd.js');
  const { idScope, registrationId } = request;
  const address = `${idScope}/registrations/${registrationId}`;
  const container = rhea.create_container({ id: `console-${registrationId}` });
  const connection = container.connect({
    connection_details: container.websocket_connect(WebSocket)(request.url, ['AMQPWSB10']),
    hostname: request.hostname,
    username: address,
    password: await dpsToken(idScope, registrationId, request.key),
    reconnect: false,
  });
  let failure: ((error: Error) => void) | undefined;
  let failed: Error | undefined;
  const fail = (error: Error) => {
    failed ??= error;
    failure?.(error);
  };
  connection.on('connection_error', (context) => fail(amqpError(context.connection.error, 'The AMQP connection was refused')));
  connection.on('disconnected', (context) => fail(amqpError(context.error, 'The AMQP connection closed')));
  const receiver = connection.open_receiver({ source: { address } });
  const sender = connection.open_sender({ target: { address } });
  sender.on('rejected', (context) => fail(amqpError(context.delivery?.remote_state?.error, 'DPS rejected the request')));
  await new Promise<void>((resolve, reject) => {
    let opened = 0;
    const one = () => ++opened === 2 && resolve();
    receiver.once('receiver_open', one);
    sender.once('sendable', one);
    failure = reject;
  });
  return {
    exchange(kind, operationId) {
      return new Promise<Answer>((resolve, reject) => {
        if (failed) return reject(failed);
        failure = reject;
        const correlationId = rhea.generate_uuid();
        const onMessage = (context: { message?: { correlation_id?: unknown; application_properties?: Record<string, unknown>; body?: unknown } }) => {
          const message = context.message;
          if (!message || message.correlation_id !== correlationId) return;
          receiver.removeListener('message', onMessage as never);
          const content = (message.body as { content?: Uint8Array } | undefined)?.content;
          const body = parseJson(content ? new TextDecoder().decode(content) : '');
          const retry = message.application_properties?.['retry-after'];
          resolve({ status: body.status === 'assigning' ? 202 : 200, retryAfter: retry === undefined ? undefined : Number(retry), body });
        };
        receiver.on('message', onMessage as never);
        if (kind === 'register') {
          sender.send({
            correlation_id: correlationId,
            application_properties: { 'iotdps-operation-type': 'iotdps-register', 'iotdps-forceRegistration': false },
            body: JSON.stringify({ registrationId }),
          });
        } else {
          sender.send({
            correlation_id: correlationId,
            application_properties: { 'iotdps-operation-type': 'iotdps-get-operationstatus', 'iotdps-operation-id': operationId },
            body: '',
          });
        }
      });
    },
    close: () => {
      failed ??= new Error('closed');
      connection.close();
    },
  };
}

/** An AMQP error whose description is DPS's error JSON (docs/device-wire.md §3) becomes that error. */
function amqpError(error: unknown, fallback: string): RegistrationError {
  const { condition, description, message } = (error ?? {}) as { condition?: string; description?: string; message?: string };
  if (description) {
    const body = parseJson(description);
    if (body.errorCode !== undefined || body.message !== undefined) return refusal(body, condition ?? 'AMQP');
    return new RegistrationError(description, undefined, condition);
  }
  return new RegistrationError(message ? `${fallback}: ${message}` : fallback, undefined, condition);
}
