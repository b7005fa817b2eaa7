import { createSasToken } from '@opendps/attestation';

export const API_VERSION = '2019-03-31';
export const CLIENT_VERSION = 'azure-iot-provisioning-device/1.9.1';
const TOKEN_LIFETIME_SECONDS = 3600;

/** `{idScope}/registrations/{registrationId}`: the DPS resource, the AMQP address and SASL user. */
export function registrationResource(idScope: string, registrationId: string): string {
  return `${idScope}/registrations/${registrationId}`;
}

/** The DPS symmetric-key token as the Node SDK signs it: raw `sr`, `skn=registration` (docs/device-wire.md §1). */
export function dpsToken(idScope: string, registrationId: string, key: string, now: () => number = Date.now): string {
  return createSasToken({
    resource: registrationResource(idScope, registrationId),
    key,
    keyName: 'registration',
    expiry: Math.floor(now() / 1000) + TOKEN_LIFETIME_SECONDS,
  });
}

export function registerBody(registrationId: string, payload: unknown): string {
  return JSON.stringify(payload === undefined ? { registrationId } : { registrationId, payload });
}
