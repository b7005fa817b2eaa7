import type { DeviceIdentity } from './session';

export interface RegistrationAddress {
  idScope: string;
  registrationId: string;
}

/** ID scopes are short alphanumeric strings (`0ne00000A0A`); which ones exist is the service's call. */
const ADDRESS = /^([A-Za-z0-9-]{1,64})\/registrations\/([^/\s]{1,128})$/;

/**
 * `{idScope}/registrations/{registrationId}`: the SASL PLAIN username and both link addresses
 * (device-protocols.md §3). Whether the id is a valid registration id is the service's call.
 */
export function parseRegistrationAddress(text: string | undefined | null): RegistrationAddress | undefined {
  const match = typeof text === 'string' ? ADDRESS.exec(text) : null;
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
