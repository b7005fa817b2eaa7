import type { DeviceIdentity } from './session';

export interface RegistrationAddress {
  idScope: string;
  registrationId: string;
}

/** ID scopes are short alphanumeric strings (`0ne00000A0A`); which ones exist is the service's call. */
const ADDRESS = /^([A-Za-z0-9-]{1,64})\/registrations\/([^/\s]{1,128})$/;
/** `amqps://{host}/` in front of a link address: the C SDK's form (`amqps://%s/%s/registrations/%s`). */
const URL_PREFIX = /^amqps?:\/\/[^/\s]{1,255}\//i;

/**
 * `{idScope}/registrations/{registrationId}`: the SASL PLAIN username and both link addresses
 * (docs/device-wire.md §3). Link addresses may also come as `amqps://{host}/{idScope}/...` (the C
 * SDK); `allowUrl` accepts that form, whatever host it names (the connection already reached us).
 * Whether the id is a valid registration id is the service's call.
 */
export function parseRegistrationAddress(text: string | undefined | null, allowUrl = false): RegistrationAddress | undefined {
  const bare = typeof text === 'string' && allowUrl ? text.replace(URL_PREFIX, '') : text;
  const match = typeof bare === 'string' ? ADDRESS.exec(bare) : null;
  if (!match) return undefined;
  const [, idScope = '', registrationId = ''] = match;
  return { idScope, registrationId };
}

/** ID scopes and registration ids compare case-insensitively, as DPS treats them. */
export function sameRegistration(identity: DeviceIdentity, address: RegistrationAddress): boolean {
  return (
    identity.idScope?.toLowerCase() === address.idScope.toLowerCase() &&
    identity.registrationId?.toLowerCase() === address.registrationId.toLowerCase()
  );
}
