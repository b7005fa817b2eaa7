import type { DpsError } from '@opendps/model';
import type { ConnectionContext as BaseConnectionContext } from '@opendps/protocol-base';
import type { Proof } from '@opendps/registration';
import type { Sender } from './rhea';

/** How a connection reached us; the TLS or WebSocket adapter fills it in. */
export type ConnectionContext = BaseConnectionContext<'amqp' | 'amqp-ws'>;

/**
 * Who the device says it is and what it presented. SASL PLAIN and TPM name the registration; an
 * X.509 device (no SASL, or ANONYMOUS) is named by the address of its first link.
 */
export interface DeviceIdentity {
  idScope?: string;
  registrationId?: string;
  proof: Proof;
}

/** One AMQP connection's state: it lives and dies with the socket. */
export interface AmqpSession {
  context: ConnectionContext;
  /** Set by SASL, or at Open for a client certificate without SASL. */
  identity?: DeviceIdentity;
  /** Why SASL PLAIN's SAS was refused: our Open carries it, then the connection closes (no identity is set). */
  refusal?: DpsError;
  /** Our sender on the client's receiver link: where responses go (docs/device-wire.md, trap 9; there is no reply-to). */
  responseSender?: Sender;
}
