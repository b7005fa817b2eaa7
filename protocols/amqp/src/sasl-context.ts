import type { Logger } from '@opendps/model';
import type { RegistrationService } from '@opendps/registration';
import type { SaslServerMechanism } from './rhea';
import type { AmqpSession } from './session';

/** What a SASL mechanism may touch: its connection's session, and the way to end it. */
export interface SaslContext {
  session: AmqpSession;
  logger: Logger;
  /** Verifies SASL PLAIN's SAS when the connection opens. */
  service: RegistrationService;
  /** The outcome `auth` is on its way: close the connection once it is written. */
  refused(mechanism: string, reason: string): void;
}

/** Decide outcome `auth`; rhea writes it when the returned promise settles. */
export function refuse(mechanism: SaslServerMechanism, context: SaslContext, name: string, reason: string): undefined {
  mechanism.outcome = false;
  context.logger.info({ mechanism: name, reason }, 'SASL refused');
  context.refused(name, reason);
  return undefined;
}

/** Decide outcome `ok`. */
export function succeed(mechanism: SaslServerMechanism, username: string): undefined {
  mechanism.outcome = true;
  mechanism.username = username;
  return undefined;
}
