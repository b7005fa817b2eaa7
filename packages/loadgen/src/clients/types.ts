/**
 * What every transport client shares: where to register, who registers, and the phases one
 * registration is timed in. A registration's phases add up to `assigned`, its whole time.
 */
export type Transport = 'mqtt' | 'mqtt-ws' | 'amqp' | 'amqp-ws' | 'https';
export const TRANSPORTS: readonly Transport[] = ['mqtt', 'mqtt-ws', 'amqp', 'amqp-ws', 'https'];

export interface Endpoint {
  host: string;
  port: number;
}

export interface ClientTarget {
  idScope: string;
  /** The DPS MQTT and AMQP listeners (TLS) and the HTTPS listener (REST and `/$iothub/websocket`). */
  mqtt: Endpoint;
  amqp: Endpoint;
  https: Endpoint;
  /** Trusted CAs (PEM); undefined: the system store (Azure). */
  ca?: string | Buffer;
}

export interface Credentials {
  registrationId: string;
  /** Symmetric key (base64): the device's own or derived from its group's. */
  key?: string;
  /** X.509: the device certificate and its private key (PEM). */
  cert?: string;
  certKey?: string;
}

export interface PhaseTimes {
  /** TCP connect and TLS handshake (for WebSockets: through the HTTP upgrade). */
  tcpTls: number;
  /** Protocol connect: MQTT CONNECT..SUBACK, AMQP SASL..links attached; 0 for HTTPS. */
  connect: number;
  /** The register request to its first answer. */
  register: number;
  /** From the first answer to the final one (waits and polls); 0 when answered at once. */
  polling: number;
  /** Start to assigned. */
  assigned: number;
}

export const PHASES: ReadonlyArray<keyof PhaseTimes> = ['tcpTls', 'connect', 'register', 'polling', 'assigned'];

/** One answer of the service to a register or operation-status request, whatever the wire. */
export interface Answer {
  status: number;
  retryAfterMs?: number;
  body: unknown;
}

export type DeviceRequest = { kind: 'register'; payload?: unknown } | { kind: 'poll'; operationId: string };

/** A connected device: one protocol connection it sends requests on. */
export interface Session {
  request(request: DeviceRequest): Promise<Answer>;
  /** Graceful goodbye (DISCONNECT, AMQP close); never throws. */
  close(): void;
  /** Tear the connection down now. */
  destroy(): void;
}

export interface Opened {
  session: Session;
  tcpTlsMs: number;
  connectMs: number;
}

/** A failed registration, with a short code for counting: the DPS errorCode, or what went wrong. */
export class LoadgenError extends Error {
  override readonly name = 'LoadgenError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** `409005`-style DPS errorCode from an error body, else `status-N`. */
export function codeOf(status: number, body: unknown): string {
  const record = body !== null && typeof body === 'object' ? (body as Record<string, unknown>) : undefined;
  const errorCode = record?.errorCode;
  return typeof errorCode === 'number' || (typeof errorCode === 'string' && errorCode) ? String(errorCode) : `status-${status}`;
}

export function errorCodeOf(error: unknown): string {
  if (error instanceof LoadgenError) return error.code;
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : 'error';
}
