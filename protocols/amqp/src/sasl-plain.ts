import { parseRegistrationAddress } from './address';
import type { SaslServerMechanism } from './rhea';
import { refuse, succeed, type SaslContext } from './sasl-context';

interface PlainCredentials {
  username: string;
  password: string;
}

/** RFC 4616: `[authzid] NUL authcid NUL passwd`. The password (a SAS) never holds a NUL. */
export function parsePlainResponse(response: Buffer | undefined): PlainCredentials | undefined {
  if (!response) return undefined;
  const first = response.indexOf(0);
  const second = first < 0 ? -1 : response.indexOf(0, first + 1);
  if (second < 0 || response.indexOf(0, second + 1) >= 0) return undefined;
  return { username: response.toString('utf8', first + 1, second), password: response.toString('utf8', second + 1) };
}

/**
 * Symmetric keys (device-protocols.md §3): username `{idScope}/registrations/{registrationId}`,
 * password the DPS SAS. Only the shape is judged here; the service verifies the SAS on every request.
 */
export function plainMechanism(context: SaslContext): SaslServerMechanism {
  const mechanism: SaslServerMechanism = {
    outcome: undefined,
    username: undefined,
    async start(response) {
      const credentials = parsePlainResponse(response);
      if (!credentials) return refuse(mechanism, context, 'PLAIN', 'malformed PLAIN response');
      const address = parseRegistrationAddress(credentials.username);
      if (!address) return refuse(mechanism, context, 'PLAIN', 'username is not {idScope}/registrations/{registrationId}');
      if (!credentials.password) return refuse(mechanism, context, 'PLAIN', 'empty password');
      context.session.identity = { ...address, proof: { kind: 'sas', token: credentials.password } };
      return succeed(mechanism, credentials.username);
    },
    async step() {
      throw new Error('PLAIN takes no SASL response');
    },
  };
  return mechanism;
}
