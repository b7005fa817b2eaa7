import { Errors } from '@opendps/model';
import { decodeRegisterBody, type RegisterBody } from '@opendps/registration';
import type { AmqpMessage } from './rhea';

/** Application properties of a DPS request (docs/device-wire.md §3). */
export const OPERATION_TYPE = 'iotdps-operation-type';
export const OPERATION_ID = 'iotdps-operation-id';
export const FORCE_REGISTRATION = 'iotdps-forceRegistration';
export const REGISTER = 'iotdps-register';
export const GET_OPERATION_STATUS = 'iotdps-get-operationstatus';
/** Defined by the SDKs, never sent by Node 1.9.1 (docs/device-wire.md, trap 18); answered with the registration state. */
export const GET_REGISTRATION = 'iotdps-get-registration';

export type DpsAmqpRequest =
  /** `forceRegistration`: the `iotdps-forceRegistration` property as sent; the shared decoder checks it. */
  | { kind: 'register'; body: RegisterBody; forceRegistration?: unknown }
  | { kind: 'operationStatus'; operationId: string }
  | { kind: 'registrationStatus' };

/** Decode one request message, or throw the coded 400/413 it deserves. */
export function decodeRequest(message: AmqpMessage, maxBodyBytes: number): DpsAmqpRequest {
  const properties = message.application_properties ?? {};
  const operationType = properties[OPERATION_TYPE];
  switch (operationType) {
    case REGISTER: {
      const body = decodeRegisterBody(bodyBytes(message.body, maxBodyBytes), maxBodyBytes);
      const force: unknown = properties[FORCE_REGISTRATION];
      return { kind: 'register', body, ...(force === undefined ? {} : { forceRegistration: force }) };
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
