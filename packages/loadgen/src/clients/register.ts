import { performance } from 'node:perf_hooks';
import { openAmqp } from './amqp';
import { openHttps } from './https';
import { openMqtt } from './mqtt';
import { LoadgenError, codeOf, type Answer, type ClientTarget, type Credentials, type DeviceRequest, type Opened, type PhaseTimes, type Transport } from './types';

/**
 * One registration over any transport, to the end: register, follow `assigning` with polls after
 * `retry-after` (else the polling interval), repeat a request answered 429 or 5xx after its
 * `retry-after` up to `maxRetries` times (docs/device-wire.md §6), and time each phase.
 */
export interface RegisterOptions {
  transport: Transport;
  target: ClientTarget;
  credentials: Credentials;
  payload?: unknown;
  /** Whole registration deadline. Default 30 s. */
  timeoutMs?: number;
  /** Wait before a poll or retry when the service names none. Default 2000 ms, as the SDK. */
  pollingIntervalMs?: number;
  /** 429/5xx answers repeated at most this often. Default 5. */
  maxRetries?: number;
  /** Upper bound on any one wait the service asks for. Default 60 s. */
  maxRetryAfterMs?: number;
}

export interface Registered {
  registrationId: string;
  assignedHub: string;
  deviceId: string;
  phases: PhaseTimes;
  polls: number;
  retries: number;
}

export function openSession(transport: Transport, target: ClientTarget, credentials: Credentials): Promise<Opened> {
  switch (transport) {
    case 'mqtt':
      return openMqtt(target, credentials, false);
    case 'mqtt-ws':
      return openMqtt(target, credentials, true);
    case 'amqp':
      return openAmqp(target, credentials, false);
    case 'amqp-ws':
      return openAmqp(target, credentials, true);
    case 'https':
      return openHttps(target, credentials);
  }
}

export async function register(options: RegisterOptions): Promise<Registered> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const pollingIntervalMs = options.pollingIntervalMs ?? 2000;
  const maxRetries = options.maxRetries ?? 5;
  const maxRetryAfterMs = options.maxRetryAfterMs ?? 60_000;
  const { registrationId } = options.credentials;
  const started = performance.now();
  let opened: Opened | undefined;
  let timer: NodeJS.Timeout | undefined;
  let delay: NodeJS.Timeout | undefined;
  let timedOut = false;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      opened?.session.destroy();
      reject(new LoadgenError('timeout', `no result within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  deadline.catch(() => undefined);
  const race = <T>(work: Promise<T>) => Promise.race([work, deadline]);
  const wait = (ms: number) => race(new Promise<void>((resolve) => (delay = setTimeout(resolve, Math.min(ms, maxRetryAfterMs)))));

  try {
    const session = race(openSession(options.transport, options.target, options.credentials));
    // A connection that completes after the deadline must still be closed.
    session.catch(() => undefined);
    opened = await session;
    if (timedOut) opened.session.destroy();
    let request: DeviceRequest = options.payload === undefined ? { kind: 'register' } : { kind: 'register', payload: options.payload };
    const registerStarted = performance.now();
    let firstAnswer: number | undefined;
    let polls = 0;
    let retries = 0;
    for (;;) {
      const answer: Answer = await race(opened.session.request(request));
      firstAnswer ??= performance.now();
      if (answer.status === 429 || answer.status >= 500) {
        if (retries >= maxRetries) throw new LoadgenError(codeOf(answer.status, answer.body), `still ${answer.status} after ${retries} retries`);
        retries += 1;
        await wait(answer.retryAfterMs ?? pollingIntervalMs);
        continue;
      }
      if (answer.status < 200 || answer.status >= 300) {
        throw new LoadgenError(codeOf(answer.status, answer.body), `answered ${answer.status}${describe(answer.body)}`);
      }
      const operation = record(answer.body);
      const status = typeof operation?.status === 'string' ? operation.status.toLowerCase() : '';
      if (status === 'assigning') {
        const operationId = operation?.operationId;
        if (typeof operationId !== 'string' || !operationId) throw new LoadgenError('protocol', 'an assigning answer without an operationId');
        polls += 1;
        await wait(answer.retryAfterMs ?? pollingIntervalMs);
        request = { kind: 'poll', operationId };
        continue;
      }
      if (status === 'assigned') {
        const state = record(operation?.registrationState);
        const assignedHub = state?.assignedHub;
        const deviceId = state?.deviceId;
        if (typeof assignedHub !== 'string' || typeof deviceId !== 'string') throw new LoadgenError('protocol', 'assigned without assignedHub and deviceId');
        const done = performance.now();
        opened.session.close();
        return {
          registrationId,
          assignedHub,
          deviceId,
          polls,
          retries,
          phases: {
            tcpTls: opened.tcpTlsMs,
            connect: opened.connectMs,
            register: firstAnswer - registerStarted,
            polling: done - firstAnswer,
            assigned: done - started,
          },
        };
      }
      const state = record(operation?.registrationState);
      const code = state?.errorCode !== undefined ? String(state.errorCode) : `status-${status || 'missing'}`;
      throw new LoadgenError(code, `registration ended '${status}'${describe(state)}`);
    }
  } catch (error) {
    opened?.session.destroy();
    if (error instanceof LoadgenError) throw error;
    throw new LoadgenError('error', (error as Error).message);
  } finally {
    clearTimeout(timer);
    clearTimeout(delay);
  }
}

function record(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function describe(body: unknown): string {
  const fields = record(body);
  const message = fields?.message ?? fields?.errorMessage;
  return typeof message === 'string' ? `: ${message}` : '';
}
