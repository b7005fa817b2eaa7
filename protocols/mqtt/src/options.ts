import type { Duplex } from 'node:stream';
import type { Logger } from '@opendps/model';
import type { RegistrationService } from '@opendps/registration';
import type { Timers } from '@opendps/protocol-base';
import type { ConnectionContext } from './session';

/** What a CONNECT says about where it is going: enough to tell a DPS device from a hub device. */
export interface ConnectSummary {
  clientId: string;
  username?: string;
}

/**
 * Chooses another server for a connection by its CONNECT (e.g. an IoT hub sharing this listener):
 * a handler that takes the whole stream, CONNECT included, or undefined to serve it as DPS.
 */
export type ConnectRouter = (connect: ConnectSummary) => ((stream: Duplex, context: ConnectionContext) => void) | undefined;

export interface DpsMqttFrontEndOptions {
  /** The business hook: every request is answered by it. */
  registration: RegistrationService;
  logger?: Logger;
  /** Largest request body accepted (default 96 KiB); a larger one gets a coded 413. */
  maxPacketBytes?: number;
  /** A connection that has not sent CONNECT (or finished TLS) by then is closed (default 10 s). */
  connectTimeoutMs?: number;
  /**
   * How long an accepted connection may go without a request in flight: from CONNECT to its first
   * request, and from each answer to the next request (plus the answer's `retry-after`). Then it
   * is closed (default 30 s).
   */
  requestTimeoutMs?: number;
  /**
   * How long a device whose request was refused for good (every 4xx but 429) has to disconnect
   * after the refusal was sent; then the connection is closed (default 5 s).
   */
  refusalGraceMs?: number;
  /** The clock and timer of the request deadlines and the close grace (tests pass a fake clock). */
  timers?: Timers;
  /** When set, each connection's CONNECT is read first and may be handed elsewhere. */
  route?: ConnectRouter;
}

export const DEFAULT_MAX_PACKET_BYTES = 96 * 1024;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
export const DEFAULT_REFUSAL_GRACE_MS = 5_000;
/** A connection we end is destroyed if the device has not closed its side by then. */
export const CLOSE_GRACE_MS = 5_000;
/** A PUBLISH also carries its topic (at most 65535 bytes + 2) and a packet id (2 bytes). */
export const TOPIC_ALLOWANCE = 2 + 65_535 + 2;
/** How long a client that sent DISCONNECT has to close its side before it is cut off. */
export const GOODBYE_LINGER_MS = 2_000;
