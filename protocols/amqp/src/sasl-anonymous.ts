import type { SaslServerMechanism } from './rhea';
import { refuse, succeed, type SaslContext } from './sasl-context';

/**
 * ANONYMOUS stands in for "no SASL" and so is accepted only from a device that presented a client
 * certificate in TLS: the chain is its proof, and its first link's address names it.
 */
export function anonymousMechanism(context: SaslContext): SaslServerMechanism {
  const mechanism: SaslServerMechanism = {
    outcome: undefined,
    username: undefined,
    async start() {
      const chain = context.session.context.clientCertificateChain;
      if (!chain || chain.length === 0) return refuse(mechanism, context, 'ANONYMOUS', 'no client certificate');
      context.session.identity = { proof: { kind: 'x509', chain } };
      return succeed(mechanism, 'x509');
    },
    async step() {
      throw new Error('ANONYMOUS takes no SASL response');
    },
  };
  return mechanism;
}
