import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import { format } from 'node:util';
import { create_container, message as messageCodec, types } from 'rhea';

/**
 * The slice of rhea this front-end uses, typed here: rhea's own declarations describe its client
 * side and leave out what a server needs (`Connection.accept`, server SASL mechanisms).
 */
export interface AmqpError {
  condition: string;
  description?: string;
  info?: Record<string, unknown>;
}

/** rhea's server mechanism contract (`lib/sasl.js`): a challenge while `outcome` is undefined, then the outcome. */
export interface SaslServerMechanism {
  outcome: boolean | undefined;
  username: string | undefined;
  start(response: Buffer | undefined, hostname: string | undefined): Promise<Buffer | undefined>;
  step(response: Buffer | undefined): Promise<Buffer | undefined>;
}

export type SaslMechanismTable = Record<string, () => SaslServerMechanism>;

export interface Terminus {
  address?: string;
}

export interface Link {
  name: string;
  /** The peer's attach (rhea unwraps its source and target). */
  remote: { attach?: { source?: Terminus | null; target?: Terminus | null; properties?: Record<string, unknown> | null } };
  set_source(fields: Terminus): void;
  set_target(fields: Terminus): void;
  close(error?: AmqpError): void;
  is_open(): boolean;
  is_closed(): boolean;
}

export interface AmqpMessage {
  correlation_id?: unknown;
  message_id?: unknown;
  content_type?: string;
  content_encoding?: string;
  application_properties?: Record<string, unknown>;
  body?: unknown;
}

export interface Sender extends Link {
  send(message: AmqpMessage): unknown;
}

export interface Delivery {
  accept(): void;
  reject(error: AmqpError): void;
  remote_settled?: boolean;
}

export interface Connection {
  accept(socket: Duplex): Connection;
  close(error?: AmqpError): void;
  is_closed(): boolean;
  /** rhea's handler for the socket's 'end': tells it the transport is gone. */
  eof(error?: Error): void;
}

export interface EventContext {
  connection: Connection;
  /** rhea's session object (internals typed where they are used). */
  session?: unknown;
  sender?: Sender;
  receiver?: Link;
  message?: AmqpMessage;
  delivery?: Delivery;
  error?: unknown;
}

export interface ConnectionOptions {
  container_id: string;
  max_frame_size: number;
  idle_time_out: number;
  reconnect: false;
  /** Requests are settled by hand: accepted once answered, rejected with the coded error. */
  autoaccept: false;
  /** Applied to every link the peer attaches and we answer as receiver. */
  receiver_options: { autoaccept: false; credit_window: number; max_message_size: number };
  /** Applied to every link the peer attaches and we answer as sender. */
  sender_options: { max_message_size: number };
}

export interface Container extends EventEmitter {
  sasl_server_mechanisms: SaslMechanismTable;
  create_connection(options: ConnectionOptions): Connection;
}

/** One container per connection: rhea reads the server's SASL mechanisms from the container. */
export function createContainer(id: string): Container {
  return create_container({ id }) as unknown as Container;
}

/** Where DPS puts the reason it refuses a connection: a property of its Open (docs/device-wire.md §3). */
export const OPEN_ERROR = 'com.microsoft:open-error';

/**
 * Refuse a connection as DPS does: our Open carries the error under `com.microsoft:open-error`, and
 * Close follows with the same error. Call it from `connection_open`: rhea writes our Open on the next
 * tick, so its properties can still be set. Nothing after the client's Open is read, not even frames
 * that came with it (a client may send Begin and Attach before it sees our Close): rhea would answer
 * them. The caller stops the byte stream too, or unread bytes would pile up in rhea.
 */
export function refuseOpen(connection: Connection, error: AmqpError): void {
  const internals = connection as unknown as { local: { open: { properties: unknown } }; amqp_transport: { read_complete: boolean } };
  const { wrap_error } = types as unknown as { wrap_error(fields: AmqpError): unknown };
  internals.local.open.properties = { [OPEN_ERROR]: wrap_error(error) };
  internals.amqp_transport.read_complete = true;
  connection.close(error);
}

/** A Data section: the DPS client JSON-parses `body.content` (docs/device-wire.md, trap 9; an AmqpValue body hangs it). */
export function dataSection(content: Buffer): unknown {
  return messageCodec.data_section(content);
}

/** An id of the type it arrived with: rhea decodes uuids and binaries to Buffers and re-encodes Buffers as uuids. */
export function sameTypeId(id: unknown): unknown {
  if (Buffer.isBuffer(id) && id.length !== 16) return types.wrap_binary(id);
  return id;
}

/**
 * rhea traces through the `debug` package (on when DEBUG names `rhea:*`), whole frames and raw
 * bytes included, straight to stderr. Sends each trace to `write` instead; returns the undo.
 */
export function routeRheaDebug(write: (text: string) => void): () => void {
  const debug = createRequire(require.resolve('rhea'))('debug') as { log: (...args: unknown[]) => void };
  const previous = debug.log;
  debug.log = (...args: unknown[]) => write(format(...args));
  return () => {
    debug.log = previous;
  };
}
