import type { TpmChallenger } from './options';
import type { SaslMechanismTable, SaslServerMechanism } from './rhea';
import { anonymousMechanism } from './sasl-anonymous';
import { refuse, type SaslContext } from './sasl-context';
import { plainMechanism } from './sasl-plain';
import { tpmMechanism } from './sasl-tpm';

/**
 * The mechanisms offered to one connection. ANONYMOUS being present is also what makes rhea accept
 * the plain AMQP header of X.509 devices that skip SASL (docs/device-wire.md, trap 10; rhea `lib/connection.js`).
 * Any other name the client picks is answered with outcome `auth` and the connection is closed
 * (rhea alone would send `auth` and keep the connection open).
 */
export function saslMechanisms(context: SaslContext, tpm: TpmChallenger | undefined): SaslMechanismTable {
  const offered: SaslMechanismTable = Object.create(null) as SaslMechanismTable;
  offered.PLAIN = () => plainMechanism(context);
  offered.ANONYMOUS = () => anonymousMechanism(context);
  if (tpm) offered.TPM = () => tpmMechanism(context, tpm);
  return new Proxy(offered, {
    get: (target, name) => (typeof name === 'string' && Object.hasOwn(target, name) ? target[name] : () => unknownMechanism(context, String(name))),
  });
}

function unknownMechanism(context: SaslContext, name: string): SaslServerMechanism {
  const mechanism: SaslServerMechanism = {
    outcome: undefined,
    username: undefined,
    start: async () => refuse(mechanism, context, name.slice(0, 64), 'mechanism not offered'),
    step: async () => undefined,
  };
  return mechanism;
}
