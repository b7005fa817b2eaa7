import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import mqtt, { type IClientOptions } from 'mqtt';
import { createSasToken } from '@opendps/attestation';

/**
 * One simulated DPS device registering over MQTT/TLS exactly as the Node provisioning SDK does
 * (docs/device-wire.md §2, §6): one connection per registration, subscribe, register, follow
 * `assigning` with polls (a new `$rid` per request), retry 429/5xx after `retry-after`, then
 * unsubscribe and disconnect.
 */
export interface DeviceOptions {
  host: string;
  port: number;
  /** The CA that signed the server certificate (PEM). */
  ca: string | Buffer;
  idScope: string;
  registrationId: string;
  /** The device's symmetric key (base64): its own, or derived from a group key. */
  key: string;
  /** Overall deadline for the whole registration, including polls. Default 30 s. */
  timeoutMs?: number;
  /** Wait before a poll or retry when the server sends no `retry-after`. Default 2000 ms, as the SDK. */
  pollingIntervalMs?: number;
  /** Custom allocation payload, sent as `payload` in the register body. */
  payload?: unknown;
}

export interface DeviceResult {
  status: 'assigned';
  assignedHub: string;
  deviceId: string;
  /** From the start of the TLS connection to the final answer. */
  latencyMs: number;
  /** Operation-status requests sent after `assigning`. */
  polls: number;
  /** Requests repeated after a 429/5xx answer. */
  retries: number;
  registrationState: Record<string, unknown>;
}

export type DeviceFailureReason = 'status' | 'failed' | 'unexpected-status' | 'protocol' | 'connection' | 'timeout';

/** A registration that did not end `assigned`, with what the server said. */
export class DeviceRegistrationError extends Error {
  override readonly name = 'DeviceRegistrationError';
  constructor(
    readonly registrationId: string,
    readonly reason: DeviceFailureReason,
    message: string,
    /** The MQTT status code of the answer, when there was one. */
    readonly statusCode?: number,
    /** The parsed answer body, when there was one. */
    readonly result?: unknown,
  ) {
    super(`registration '${registrationId}' failed (${reason}): ${message}`);
  }
}

export const API_VERSION = '2019-03-31';
export const CLIENT_VERSION = 'azure-iot-provisioning-device/1.9.1';
export const RESPONSE_TOPIC = '$dps/registrations/res/#';
/** The `/?` is mandatory: the SDK ignores anything else (docs/device-wire.md, trap 4). */
const RESPONSE_PATTERN = /^\$dps\/registrations\/res\/(.*)\/\?(.*)$/;
const TOKEN_LIFETIME_SECONDS = 3600;

interface Answer {
  statusCode: number;
  retryAfterMs?: number;
  body: unknown;
}

type Request = { kind: 'register' } | { kind: 'poll'; operationId: string };

export async function registerDevice(options: DeviceOptions): Promise<DeviceResult> {
  const { registrationId } = options;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const pollingIntervalMs = options.pollingIntervalMs ?? 2000;
  const fail = (reason: DeviceFailureReason, message: string, statusCode?: number, result?: unknown) =>
    new DeviceRegistrationError(registrationId, reason, message, statusCode, result);

  const started = performance.now();
  const client = mqtt.connect(connectOptions(options, timeoutMs));
  const waiting = new Map<string, (answer: Answer) => void>();
  let closing = false;
  let timer: NodeJS.Timeout | undefined;
  // Everything below races this: a timeout, a client error or an unexpected close ends the attempt.
  const aborted = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(fail('timeout', `no result within ${timeoutMs} ms`)), timeoutMs);
    client.on('error', (error) => reject(fail('connection', error.message)));
    client.on('close', () => {
      if (!closing) reject(fail('connection', 'the server closed the connection'));
    });
  });
  aborted.catch(() => undefined);
  const guarded = <T>(work: Promise<T>): Promise<T> => Promise.race([work, aborted]);
  let delay: NodeJS.Timeout | undefined;
  const wait = (ms: number) => guarded(new Promise<void>((resolve) => (delay = setTimeout(resolve, ms))));

  client.on('message', (topic, payload) => {
    const match = RESPONSE_PATTERN.exec(topic);
    if (!match) return;
    const query = new URLSearchParams(match[2]);
    const deliver = waiting.get(query.get('$rid') ?? '');
    if (!deliver) return; // an unknown $rid is dropped, as the SDK does
    const retryAfter = Number(query.get('retry-after'));
    let body: unknown;
    try {
      body = JSON.parse(payload.toString('ascii')); // the SDK decodes ASCII, then parses (docs/device-wire.md §2)
    } catch {
      body = new SyntaxError(`the answer on '${topic}' is not JSON`);
    }
    deliver({
      statusCode: Number(match[1]),
      ...(query.has('retry-after') && Number.isFinite(retryAfter) ? { retryAfterMs: retryAfter * 1000 } : {}),
      body,
    });
  });

  const exchange = async (request: Request): Promise<Answer> => {
    const rid = randomUUID();
    const answered = new Promise<Answer>((resolve) => waiting.set(rid, resolve));
    const [topic, body] =
      request.kind === 'register'
        ? [`$dps/registrations/PUT/iotdps-register/?$rid=${rid}`, registerBody(options)]
        : [`$dps/registrations/GET/iotdps-get-operationstatus/?$rid=${rid}&operationId=${request.operationId}`, ' '];
    try {
      // Both the PUBACK and the answer must arrive; either may come first.
      const [answer] = await guarded(Promise.all([answered, client.publishAsync(topic, body, { qos: 1 })]));
      return answer;
    } finally {
      waiting.delete(rid);
    }
  };

  let polls = 0;
  let retries = 0;
  try {
    await guarded(new Promise<void>((resolve) => client.once('connect', () => resolve())));
    await guarded(client.subscribeAsync(RESPONSE_TOPIC, { qos: 1 }));
    let request: Request = { kind: 'register' };
    for (;;) {
      const answer = await exchange(request);
      const { statusCode, body } = answer;
      if (body instanceof Error) throw fail('protocol', body.message, statusCode);
      if (statusCode >= 429) {
        // Throttled or a server error: the SDK repeats the same request after the delay (docs/device-wire.md §6).
        retries += 1;
        await wait(answer.retryAfterMs ?? pollingIntervalMs);
        continue;
      }
      if (statusCode >= 300 || !(statusCode >= 200)) {
        throw fail('status', `status ${statusCode}${describeError(body)}`, statusCode, body);
      }
      const operation = asRecord(body);
      const status = typeof operation?.status === 'string' ? operation.status.toLowerCase() : undefined;
      if (status === 'assigning') {
        const operationId = operation?.operationId;
        if (typeof operationId !== 'string' || !operationId) {
          throw fail('protocol', 'an assigning answer carries no operationId', statusCode, body);
        }
        polls += 1;
        await wait(answer.retryAfterMs ?? pollingIntervalMs);
        request = { kind: 'poll', operationId };
        continue;
      }
      if (status === 'assigned') {
        const latencyMs = performance.now() - started;
        const state = asRecord(operation?.registrationState);
        const assignedHub = state?.assignedHub;
        const deviceId = state?.deviceId;
        if (typeof assignedHub !== 'string' || typeof deviceId !== 'string') {
          throw fail('protocol', 'an assigned answer needs registrationState.assignedHub and deviceId', statusCode, body);
        }
        closing = true;
        await guarded(client.unsubscribeAsync(RESPONSE_TOPIC));
        await guarded(client.endAsync());
        return { status: 'assigned', assignedHub, deviceId, latencyMs, polls, retries, registrationState: state ?? {} };
      }
      if (status === 'failed') {
        throw fail('failed', `status 'failed'${describeError(operation?.registrationState)}`, statusCode, body);
      }
      throw fail('unexpected-status', `body status '${String(operation?.status)}'`, statusCode, body);
    }
  } catch (error) {
    closing = true;
    client.end(true);
    throw error instanceof DeviceRegistrationError ? error : fail('protocol', (error as Error).message);
  } finally {
    clearTimeout(timer);
    clearTimeout(delay);
  }
}

function connectOptions(options: DeviceOptions, timeoutMs: number): IClientOptions {
  const { idScope, registrationId } = options;
  const resource = `${idScope}/registrations/${registrationId}`;
  return {
    protocol: 'mqtts',
    host: options.host,
    port: options.port,
    ca: options.ca,
    rejectUnauthorized: true,
    protocolVersion: 4,
    clientId: registrationId,
    clean: true,
    keepalive: 180,
    reconnectPeriod: 0, // the SDK never reconnects a provisioning connection
    connectTimeout: timeoutMs,
    username: `${resource}/api-version=${API_VERSION}&ClientVersion=${encodeURIComponent(CLIENT_VERSION)}`,
    // The symmetric-key DPS token: raw sr, skn=registration, fields in the SDK's order (docs/device-wire.md §1).
    password: createSasToken({
      resource,
      key: options.key,
      keyName: 'registration',
      expiry: Math.floor(Date.now() / 1000) + TOKEN_LIFETIME_SECONDS,
    }),
  };
}

function registerBody(options: DeviceOptions): string {
  const body: Record<string, unknown> = { registrationId: options.registrationId };
  if (options.payload !== undefined) body.payload = options.payload;
  return JSON.stringify(body);
}

function describeError(body: unknown): string {
  const record = asRecord(body);
  if (!record) return '';
  const code = record.errorCode;
  const message = record.message ?? record.errorMessage;
  const parts = [code !== undefined ? `errorCode ${String(code)}` : '', typeof message === 'string' ? message : ''];
  const text = parts.filter(Boolean).join(': ');
  return text ? ` (${text})` : '';
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

