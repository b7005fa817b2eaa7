import { Errors } from '@opendps/model';
import type { AmqpMessage } from './rhea';

/** Application properties of a DPS request (device-protocols.md §3). */
export const OPERATION_TYPE = 'iotdps-operation-type';
export const OPERATION_ID = 'iotdps-operation-id';
export const FORCE_REGISTRATION = 'iotdps-forceRegistration';
export const REGISTER = 'iotdps-register';
export const GET_OPERATION_STATUS = 'iotdps-get-operationstatus';
/** Defined by the SDKs, never sent by Node 1.9.1 (trap 18); answered with the registration state. */
export const GET_REGISTRATION = 'iotdps-get-registration';

export interface RegisterBody {
  registrationId?: string;
  tpm?: { endorsementKey: string; storageRootKey?: string };
  payload?: unknown;
  forceRegistration?: boolean;
}

export type DpsAmqpRequest =
  | { kind: 'register'; body: RegisterBody }
  | { kind: 'operationStatus'; operationId: string }
  | { kind: 'registrationStatus' };

/** Decode one request message, or throw the coded 400/413 it deserves. */
export function decodeRequest(message: AmqpMessage, maxBodyBytes: number): DpsAmqpRequest {
  const properties = message.application_properties ?? {};
  const operationType = properties[OPERATION_TYPE];
  switch (operationType) {
    case REGISTER: {
      const body = parseRegisterBody(bodyBytes(message.body, maxBodyBytes));
      const force = forceRegistration(properties[FORCE_REGISTRATION]);
      return { kind: 'register', body: force === undefined ? body : { ...body, forceRegistration: force || body.forceRegistration === true } };
    }
    case GET_OPERATION_STATUS: {
      const operationId = properties[OPERATION_ID];
      if (typeof operationId !== 'string' || operationId === '') {
        throw Errors.invalidField(`The operation status request has no '${OPERATION_ID}' application property.`);
      }
      return { kind: 'operationStatus', operationId };
    }
    case GET_REGISTRATION:
      return { kind: 'registrationStatus' };
    default:
      throw Errors.invalidField(`'${OPERATION_TYPE}' must be ${REGISTER}, ${GET_OPERATION_STATUS} or ${GET_REGISTRATION}.`);
  }
}

/** Node sends a boolean; other clients may send its text. */
function forceRegistration(value: unknown): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === 'false') return value === 'true';
  throw Errors.invalidField(`'${FORCE_REGISTRATION}' must be a boolean.`);
}

/** The body as bytes: Data sections (Node), or an AmqpValue string or binary (other clients). */
export function bodyBytes(body: unknown, maxBodyBytes: number): Buffer {
  let bytes: Buffer;
  if (body === undefined || body === null) bytes = Buffer.alloc(0);
  else if (typeof body === 'string') bytes = Buffer.from(body, 'utf8');
  else if (Buffer.isBuffer(body)) bytes = body;
  else if (isDataSection(body)) {
    const content = body.content;
    const parts = Array.isArray(content) ? content : [content];
    if (!parts.every((part): part is Buffer => Buffer.isBuffer(part))) throw Errors.invalidField('The Data section is not binary.');
    bytes = Buffer.concat(parts);
  } else {
    throw Errors.invalidField('The request body must be a Data section of UTF-8 JSON.');
  }
  if (bytes.length > maxBodyBytes) throw Errors.payloadTooLarge(`The request body is larger than ${maxBodyBytes} bytes.`);
  return bytes;
}

function isDataSection(body: unknown): body is { typecode: 0x75; content: unknown } {
  return typeof body === 'object' && body !== null && (body as { typecode?: unknown }).typecode === 0x75;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `{registrationId, tpm?: {endorsementKey, storageRootKey?}, payload?}`; an empty body means `{}`. */
export function parseRegisterBody(bytes: Buffer): RegisterBody {
  if (bytes.length === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw Errors.invalidJson();
  }
  if (!isObject(value)) throw Errors.invalidField('The request body must be a JSON object.');
  const { registrationId, tpm, payload, forceRegistration: force } = value;
  const body: RegisterBody = {};
  if (registrationId !== undefined && registrationId !== null) {
    if (typeof registrationId !== 'string') throw Errors.invalidField("'registrationId' must be a string.");
    body.registrationId = registrationId;
  }
  if (tpm !== undefined && tpm !== null) {
    if (!isObject(tpm) || typeof tpm.endorsementKey !== 'string') throw Errors.invalidField("'tpm.endorsementKey' must be a string.");
    if (tpm.storageRootKey !== undefined && tpm.storageRootKey !== null && typeof tpm.storageRootKey !== 'string') {
      throw Errors.invalidField("'tpm.storageRootKey' must be a string.");
    }
    body.tpm = { endorsementKey: tpm.endorsementKey, ...(typeof tpm.storageRootKey === 'string' ? { storageRootKey: tpm.storageRootKey } : {}) };
  }
  if (force !== undefined && force !== null) {
    if (typeof force !== 'boolean') throw Errors.invalidField("'forceRegistration' must be a boolean.");
    body.forceRegistration = force;
  }
  if (payload !== undefined) body.payload = payload;
  return body;
}
