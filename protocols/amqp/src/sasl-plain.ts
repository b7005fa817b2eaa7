import { toDpsError, type DpsError } from '@opendps/model';
import { parseRegistrationAddress, type RegistrationAddress } from './address';
import type { SaslServerMechanism } from './rhea';
import { refuse, succeed, type SaslContext } from './sasl-context';
import type { DeviceIdentity } from './session';

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
 * Symmetric keys (docs/device-wire.md §3): username `{idScope}/registrations/{registrationId}`,
 * password the DPS SAS. A malformed response is refused here (outcome `auth`). The SAS itself is
 * verified now, as DPS does when the connection opens; the outcome is `ok` either way and a refusal
 * waits for our Open, which carries it (front-end.ts). Every request verifies the SAS again: it may
 * expire while the connection is open.
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
      const identity: DeviceIdentity = { ...address, proof: { kind: 'sas', token: credentials.password } };
      const refusal = await verify(context, { ...address, token: credentials.password });
      if (refusal) context.session.refusal = refusal;
      else context.session.identity = identity;
      return succeed(mechanism, credentials.username);
    },
    async step() {
      throw new Error('PLAIN takes no SASL response');
    },
  };
  return mechanism;
}

/**
 * The service's verdict on the SAS, or undefined when it passed or no verdict was reached. A 429 or
 * 5xx (throttled, store down) is no verdict: the connection opens and the register request meets
 * the same condition as a rejection the SDK retries (`retry-after`), where an open-error would fail
 * `register()` for good (docs/device-wire.md §6).
 */
async function verify(context: SaslContext, device: RegistrationAddress & { token: string }): Promise<DpsError | undefined> {
  const { idScope, registrationId, token } = device;
  const fields = { mechanism: 'PLAIN', idScope, registrationId };
  try {
    await context.service.authenticate({ idScope, registrationId, proof: { kind: 'sas', token }, transport: context.session.context.transport });
    return undefined;
  } catch (thrown) {
    const error = toDpsError(thrown);
    if (error.status === 429 || error.status >= 500) {
      context.logger.info({ ...fields, errorCode: error.errorCode }, 'SAS not verified at open; each request verifies it');
      return undefined;
    }
    context.logger.info({ ...fields, errorCode: error.errorCode, reason: error.message }, 'SAS refused; refusing the connection at Open');
    return error;
  }
}
