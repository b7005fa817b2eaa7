import { Errors, type DpsError } from '@opendps/model';
import { parseRegistrationAddress, sameRegistration } from './address';
import type { NamedDevice } from './exchange';
import type { Link, Sender } from './rhea';
import type { AmqpSession, DeviceIdentity } from './session';

export const API_VERSION_PROPERTY = 'com.microsoft:api-version';

/**
 * The client's receiver link (our sender), attached first: its source is
 * `{idScope}/registrations/{registrationId}`. Our attach echoes a non-null source and target (docs/device-wire.md §3).
 * Returns the refusal to detach the link with, if any.
 */
export function attachResponseLink(session: AmqpSession, sender: Sender): DpsError | undefined {
  const remote = sender.remote.attach;
  const address = remote?.source?.address;
  const refusal = bindAddress(session, address);
  if (refusal) return refusal;
  sender.set_source({ address: address as string });
  sender.set_target(remote?.target?.address ? { address: remote.target.address } : {});
  session.responseSender = sender;
  return undefined;
}

/** The client's sender link (our receiver): its target is the same address. */
export function attachRequestLink(session: AmqpSession, receiver: Link): DpsError | undefined {
  const remote = receiver.remote.attach;
  const address = remote?.target?.address;
  const refusal = bindAddress(session, address);
  if (refusal) return refusal;
  receiver.set_target({ address: address as string });
  receiver.set_source(remote?.source?.address ? { address: remote.source.address } : {});
  return undefined;
}

/** `com.microsoft:api-version` of a link (Node sends 2019-03-31; any value is accepted). */
export function apiVersionOf(link: Link): string | undefined {
  const value = link.remote.attach?.properties?.[API_VERSION_PROPERTY];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * A link's address must name the registration SASL authenticated. An X.509 device (no SASL, or
 * ANONYMOUS) is named by its first link; its certificate is checked against that name per request.
 */
function bindAddress(session: AmqpSession, text: string | undefined): DpsError | undefined {
  const identity = session.identity;
  if (!identity) return Errors.unauthorized('The connection is not authenticated.');
  const address = parseRegistrationAddress(text, true);
  if (!address) return Errors.invalidTopic('The link address must be [amqps://{host}/]{idScope}/registrations/{registrationId}.');
  if (identity.idScope === undefined) {
    identity.idScope = address.idScope;
    identity.registrationId = address.registrationId;
    return undefined;
  }
  if (!sameRegistration(identity, address)) {
    return Errors.unauthorized('The link address names another registration than the one authenticated.');
  }
  return undefined;
}

/** The device once a link has named it. */
export function namedDevice(identity: DeviceIdentity | undefined): NamedDevice | undefined {
  if (!identity || identity.idScope === undefined || identity.registrationId === undefined) return undefined;
  return { idScope: identity.idScope, registrationId: identity.registrationId, proof: identity.proof };
}
