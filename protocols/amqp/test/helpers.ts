import { createRootCa, createServerCertificate, type Issued } from '@opendps/pki';
import type {
  AuthenticationRequest,
  OperationStatusRequest,
  RegistrationOutcome,
  RegistrationRequest,
  RegistrationService,
  RegistrationStatusRequest,
} from '@opendps/registration';
import type { DeviceRegistrationState } from '@opendps/model';
import { create_container, type Connection, type ConnectionOptions, type EventContext, type Message } from 'rhea';
import { createDpsAmqpFrontEnd, type DpsAmqpFrontEnd, type DpsAmqpFrontEndOptions } from '../src';

export const ID_SCOPE = '0ne00000A0A';
export const addressFor = (registrationId: string, idScope = ID_SCOPE): string => `${idScope}/registrations/${registrationId}`;
export const sasFor = (registrationId: string): string =>
  `SharedAccessSignature sr=${ID_SCOPE}/registrations/${registrationId}&sig=abc%3D&skn=registration&se=1795684788`;

/** The business hook, scripted: each method answers with the script and records what it was handed. */
export class ScriptedRegistration implements RegistrationService {
  readonly registered: RegistrationRequest[] = [];
  readonly polled: OperationStatusRequest[] = [];
  readonly looked: RegistrationStatusRequest[] = [];
  readonly authenticated: AuthenticationRequest[] = [];
  /** The SASL PLAIN check at open; the default accepts every SAS (the tests' tokens are not signed). */
  onAuthenticate: (request: AuthenticationRequest) => Promise<void> = async () => undefined;

  constructor(
    public onRegister: (request: RegistrationRequest) => Promise<RegistrationOutcome> = async (request) => assigning(request.registrationId),
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

  authenticate(request: AuthenticationRequest): Promise<void> {
    this.authenticated.push(request);
    return this.onAuthenticate(request);
  }

  async registrationStatus(request: RegistrationStatusRequest): Promise<DeviceRegistrationState> {
    this.looked.push(request);
    return { registrationId: request.registrationId, status: 'assigned', assignedHub: 'localhost:8884', deviceId: request.registrationId };
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
    const ca = createRootCa({ commonName: 'OpenDPS AMQP test root' });
    pki = { ca, server: createServerCertificate(ca, ['localhost', '127.0.0.1']) };
  }
  return pki;
}

export interface Running {
  frontEnd: DpsAmqpFrontEnd;
  port: number;
  close(): Promise<void>;
}

export async function startFrontEnd(options: DpsAmqpFrontEndOptions): Promise<Running> {
  const { server } = testPki();
  const frontEnd = createDpsAmqpFrontEnd(options);
  const listener = await frontEnd.listen({ port: 0, host: '127.0.0.1', tls: { cert: server.certificatePem, key: server.privateKeyPem } });
  return { frontEnd, port: listener.port, close: () => frontEnd.close() };
}

/** How a rhea client connection ended: opened, or refused with the error rhea reports. */
export type Opened = ({ connection: Connection; error?: undefined } | { connection: Connection; error: Error | string }) & {
  /** Resolves once the connection is closed or its transport is gone. */
  gone: Promise<void>;
};

/** A rhea client over TLS, as the DPS AMQP transport makes it (docs/device-wire.md §3); resolves once opened or refused. */
export function connectClient(port: number, options: Partial<ConnectionOptions> = {}): Promise<Opened> {
  const container = create_container();
  let markGone: () => void = () => undefined;
  const gone = new Promise<void>((resolve) => (markGone = resolve));
  // rhea reports 'disconnected' only for a transport lost before a Close exchange.
  container.on('disconnected', () => markGone());
  container.on('connection_close', () => markGone());
  return new Promise((resolve) => {
    const connection = container.connect({
      host: 'localhost',
      port,
      transport: 'tls',
      ca: testPki().ca.certificatePem,
      reconnect: false,
      ...options,
    } as ConnectionOptions);
    container.on('connection_open', () => resolve({ connection, gone }));
    container.on('connection_error', (context: EventContext) => resolve({ connection, gone, error: String(context.connection.error ?? context.error) }));
    container.on('error', (error: Error) => resolve({ connection, gone, error }));
    container.on('disconnected', (context: EventContext) => resolve({ connection, gone, error: String(context.error ?? 'disconnected') }));
  });
}

export const plain = (registrationId: string, password = sasFor(registrationId)): Partial<ConnectionOptions> => ({
  username: addressFor(registrationId),
  password,
});

export interface DeviceLinks {
  request(message: Message): Promise<Answer>;
  /** The server's attach frames for the receiver and the sender link. */
  attaches(): ({ max_message_size?: unknown } | undefined)[];
  close(): void;
}

export interface Answer {
  outcome: 'accepted' | 'rejected';
  error?: { condition: string; description: string; info?: Record<string, unknown> };
  response?: Message;
}

/** The DPS client's links: receiver first, then sender, on the same address (docs/device-wire.md §3). */
export async function attachLinks(connection: Connection, address: string): Promise<DeviceLinks> {
  const receiver = connection.open_receiver({ source: { address }, properties: { 'com.microsoft:api-version': '2019-03-31' } });
  // A refused attach comes back with a null source, then a detach carrying the error.
  await new Promise<void>((resolve, reject) => {
    receiver.once('receiver_open', () => {
      // (rhea decodes a null terminus as a Typed null: look at its address)
      if ((receiver.source as { address?: string } | undefined)?.address) resolve();
    });
    receiver.once('receiver_error', () => reject(new Error(`receiver refused: ${JSON.stringify(receiver.error)}`)));
  });
  const sender = connection.open_sender({ target: { address }, properties: { 'com.microsoft:api-version': '2019-03-31' } });
  await new Promise<void>((resolve, reject) => {
    sender.once('sender_open', () => {
      if ((sender.target as { address?: string } | undefined)?.address) resolve();
    });
    sender.once('sender_error', () => reject(new Error(`sender refused: ${JSON.stringify(sender.error)}`)));
  });
  const responses: Message[] = [];
  receiver.on('message', (context: EventContext) => {
    if (context.message) responses.push(context.message);
  });
  return {
    request(message) {
      return new Promise((resolve) => {
        const delivery = sender.send(message);
        const settle = (outcome: 'accepted' | 'rejected', error?: Answer['error']) => {
          if (outcome === 'rejected') return resolve({ outcome, ...(error ? { error } : {}) });
          const started = Date.now();
          const wait = (): void => {
            // an answer is taken once; a request without ids gets the next unmatched answer (as the C SDK does)
            const index = responses.findIndex((candidate) => String(candidate.correlation_id) === String(message.correlation_id ?? message.message_id));
            const response = index >= 0 ? responses.splice(index, 1)[0] : undefined;
            if (response || Date.now() - started > 3000) return resolve({ outcome, ...(response ? { response } : {}) });
            setTimeout(wait, 5);
          };
          wait();
        };
        sender.on('accepted', (context: EventContext) => {
          if (context.delivery === delivery) settle('accepted');
        });
        sender.on('rejected', (context: EventContext) => {
          if (context.delivery === delivery) settle('rejected', context.delivery?.remote_state?.error as Answer['error']);
        });
      });
    },
    attaches: () => [receiver, sender].map((link) => (link as unknown as { remote: { attach?: { max_message_size?: unknown } } }).remote.attach),
    close: () => connection.close(),
  };
}

/** A register request as Node sends it: Data section JSON, string correlation id. */
export function registerMessage(registrationId: string, correlationId: string, extra: Record<string, unknown> = {}, properties: Record<string, unknown> = {}): Message {
  const { message } = require('rhea') as typeof import('rhea');
  return {
    correlation_id: correlationId,
    application_properties: { 'iotdps-operation-type': 'iotdps-register', 'iotdps-forceRegistration': false, ...properties },
    body: message.data_section(Buffer.from(JSON.stringify({ registrationId, ...extra }))),
  } as Message;
}

export function pollMessage(operationId: string, correlationId: string): Message {
  return {
    correlation_id: correlationId,
    application_properties: { 'iotdps-operation-type': 'iotdps-get-operationstatus', 'iotdps-operation-id': operationId },
    body: '',
  } as Message;
}
