import { Errors } from '@opendps/model';

/** The body of PUT register and of the status lookup: DeviceRegistration in device.json. */
export interface DeviceRegistrationBody {
  registrationId?: string;
  tpm?: { endorsementKey: string; storageRootKey?: string };
  payload?: unknown;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Checks the wire types of a DeviceRegistration body (absent means `{}`) and that its
 * `registrationId`, when given, names the registration of the path (ids compare case-insensitively,
 * as DPS registration ids do). Domain rules (id syntax, key formats) are the service's.
 */
export function deviceRegistrationBody(value: unknown, pathRegistrationId: string): DeviceRegistrationBody {
  if (value === undefined || value === null) return {};
  if (!isObject(value)) throw Errors.invalidField('The request body must be a JSON object.');
  const { registrationId, tpm, payload } = value;
  const body: DeviceRegistrationBody = {};

  if (registrationId !== undefined && registrationId !== null) {
    if (typeof registrationId !== 'string') throw Errors.invalidField("'registrationId' must be a string.");
    if (registrationId.toLowerCase() !== pathRegistrationId.toLowerCase()) {
      throw Errors.idMismatch(`The body's registrationId '${registrationId}' does not match '${pathRegistrationId}' in the path.`);
    }
    body.registrationId = registrationId;
  }

  if (tpm !== undefined && tpm !== null) {
    if (!isObject(tpm)) throw Errors.invalidField("'tpm' must be an object.");
    const { endorsementKey, storageRootKey } = tpm;
    if (typeof endorsementKey !== 'string') throw Errors.invalidField("'tpm.endorsementKey' must be a string.");
    if (storageRootKey !== undefined && storageRootKey !== null && typeof storageRootKey !== 'string') {
      throw Errors.invalidField("'tpm.storageRootKey' must be a string.");
    }
    body.tpm = { endorsementKey, ...(typeof storageRootKey === 'string' ? { storageRootKey } : {}) };
  }

  if (payload !== undefined) body.payload = payload;
  return body;
}
