import { createRootCa, createServerCertificate, type Issued } from '@opendps/pki';
import type {
  AuthenticationRequest,
  OperationStatusRequest,
  RegistrationOutcome,
  RegistrationRequest,
  RegistrationService,
} from '@opendps/registration';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Schedule, Timers } from '@opendps/protocol-base';
import { createDpsMqttFrontEnd, type DpsMqttFrontEnd, type DpsMqttFrontEndOptions } from '../src';

export const ID_SCOPE = '0ne00000A0A';
export const API = 'api-version=2019-03-31&ClientVersion=azure-iot-provisioning-device%2F1.9.1';

export const usernameFor = (registrationId: string, idScope = ID_SCOPE): string =>
  `${idScope}/registrations/${registrationId}/${API}`;

/**
 * The business hook, scripted (aedes habit: decisions are injected). Each method answers with the
 * script's function and records what the front-end handed over.
 */
export class ScriptedRegistration implements RegistrationService {
  readonly registered: RegistrationRequest[] = [];
  readonly polled: OperationStatusRequest[] = [];
  readonly authenticated: AuthenticationRequest[] = [];
  /** How `authenticate` answers (an X.509 CONNECT asks it): accepted unless a test says otherwise. */
  onAuthenticate: (request: AuthenticationRequest) => Promise<void> = async () => undefined;

  constructor(
    public onRegister: (request: RegistrationRequest) => Promise<RegistrationOutcome> = async (request) =>
      assigning(request.registrationId),
    public onOperationStatus: (request: OperationStatusRequest) => Promise<RegistrationOutcome> = async (request) =>
      assigned(request.registrationId, request.operationId),
  ) {}

  register(request: RegistrationRequest): Promise<RegistrationOutcome> {
    this.registered.push(request);
    return this.onRegister(request);
  }

  operationStatus(request: OperationStatusRequest): Promise<RegistrationOutcome> {
    this.polled.push(request);
    return this.onOperationStatus(request);
  }

  registrationStatus(): never {
    throw new Error('not used over MQTT');
  }

  authenticate(request: AuthenticationRequest): Promise<void> {
    this.authenticated.push(request);
    return this.onAuthenticate(request);
  }
}

export const operationIdFor = (registrationId: string): string => `4.d0fa1c2e.${registrationId}-op`;

export function assigning(registrationId: string, retryAfterSeconds = 3): RegistrationOutcome {
  return {
    status: 202,
    retryAfterSeconds,
    body: { operationId: operationIdFor(registrationId), status: 'assigning', registrationState: { registrationId, status: 'assigning' } },
  };
}

export function assigned(registrationId: string, operationId: string): RegistrationOutcome {
  return {
    status: 200,
    body: {
      operationId,
      status: 'assigned',
      registrationState: {
        registrationId,
        status: 'assigned',
        assignedHub: 'localhost:8884',
        deviceId: registrationId,
        createdDateTimeUtc: '2026-01-01T00:00:00.0000000Z',
        lastUpdatedDateTimeUtc: '2026-01-01T00:00:01.0000000Z',
        etag: 'IjEi',
        substatus: 'initialAssignment',
      },
    },
  };
}

export interface Pki {
  ca: Issued;
  server: Issued;
}

let pki: Pki | undefined;
/** One test CA and a server certificate for localhost and 127.0.0.1 (docs/device-wire.md §7). */
export function testPki(): Pki {
  if (!pki) {
    const ca = createRootCa({ commonName: 'OpenDPS MQTT test root' });
    pki = { ca, server: createServerCertificate(ca, ['localhost', '127.0.0.1']) };
  }
  return pki;
}

export interface Running {
  frontEnd: DpsMqttFrontEnd;
  port: number;
  close(): Promise<void>;
}

export async function startFrontEnd(options: DpsMqttFrontEndOptions): Promise<Running> {
  const { server } = testPki();
  const frontEnd = createDpsMqttFrontEnd(options);
  const listener = await frontEnd.listen({ port: 0, host: '127.0.0.1', tls: { cert: server.certificatePem, key: server.privateKeyPem } });
  return { frontEnd, port: listener.port, close: () => frontEnd.close() };
}

/** A device connection as the DPS MQTT client makes it (docs/device-wire.md §2). */
export function connectDevice(port: number, registrationId: string, extra: Partial<IClientOptions> = {}): Promise<MqttClient> {
  return mqtt.connectAsync(`mqtts://localhost:${port}`, {
    protocolVersion: 4,
    clientId: registrationId,
    username: usernameFor(registrationId),
    password: `SharedAccessSignature sr=${ID_SCOPE}/registrations/${registrationId}&sig=abc%3D&skn=registration&se=1795684788`,
    clean: true,
    keepalive: 180,
    reconnectPeriod: 0,
    ca: testPki().ca.certificatePem,
    ...extra,
  });
}

export interface Received {
  topic: string;
  payload: Buffer;
  json: Record<string, unknown>;
}

/** Resolves with the next message whose topic matches. */
export function nextMessage(client: MqttClient, match: (topic: string) => boolean = () => true, timeoutMs = 5000): Promise<Received> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('message', onMessage);
      reject(new Error('no message within ' + timeoutMs + ' ms'));
    }, timeoutMs);
    function onMessage(topic: string, payload: Buffer): void {
      if (!match(topic)) return;
      clearTimeout(timer);
      client.off('message', onMessage);
      resolve({ topic, payload, json: JSON.parse(payload.toString('ascii')) as Record<string, unknown> });
    }
    client.on('message', onMessage);
  });
}

/** Resolves once the client's connection is gone. */
export function closedWithin(client: MqttClient, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!client.connected) return resolve();
    const timer = setTimeout(() => reject(new Error('connection still open')), timeoutMs);
    client.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

export const registerTopic = (rid: string): string => `$dps/registrations/PUT/iotdps-register/?$rid=${rid}`;
export const pollTopic = (rid: string, operationId: string): string =>
  `$dps/registrations/GET/iotdps-get-operationstatus/?$rid=${rid}&operationId=${operationId}`;

/** A clock the test moves: timers fire only when `advance` passes their due time. */
export class FakeClock implements Timers {
  private time = 0;
  private timers: Array<{ due: number; fire: () => void }> = [];
  private waiters: Array<() => void> = [];

  readonly now = (): number => this.time;

  readonly schedule: Schedule = (ms, fire) => {
    const timer = { due: this.time + ms, fire };
    this.timers.push(timer);
    for (const waiter of this.waiters.splice(0)) waiter();
    return () => {
      this.timers = this.timers.filter((other) => other !== timer);
    };
  };

  /** Delays, from now, of the timers pending. */
  pending(): number[] {
    return this.timers.map((timer) => timer.due - this.time).sort((a, b) => a - b);
  }

  /** Resolves once a timer with this delay is pending (responses arm theirs just after being written). */
  async armed(delay: number): Promise<void> {
    while (!this.pending().includes(delay)) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  advance(ms: number): void {
    this.time += ms;
    const due = this.timers.filter((timer) => timer.due <= this.time);
    this.timers = this.timers.filter((timer) => timer.due > this.time);
    for (const timer of due) timer.fire();
  }
}
