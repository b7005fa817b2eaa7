import { Errors, parseJson } from '@opendps/model';
import type { Proof, RegistrationRequest, Transport } from './types';

/**
 * The one decoder of device register requests for every transport (docs/device-wire.md §2-§4):
 * front-ends hand it what their wire carried, and every transport gets the same rules and codes.
 * Checks run before the service (so before attestation): the size, then the JSON, then its fields.
 */

/** The body DeviceRegistration of device.json, as every transport carries it. */
export interface RegisterBody {
  registrationId?: string;
  tpm?: { endorsementKey: string; storageRootKey?: string };
  payload?: unknown;
  forceRegistration?: boolean;
}

/** What the transport carried around the body: CONNECT username, link, or path and query. */
export interface RegisterEnvelope {
  idScope: string;
  /** The registration the request is addressed to (MQTT username, AMQP link, HTTPS path). */
  registrationId: string;
  proof: Proof;
  transport: Transport;
  clientAddress?: string | undefined;
  /** As sent (MQTT username, AMQP link property, HTTPS query); absent is accepted. */
  apiVersion?: string | null | undefined;
  /** As sent outside the body (HTTPS query `forceRegistration`, AMQP `iotdps-forceRegistration`). */
  forceRegistration?: unknown;
}

/** Dated api-versions as the SDKs send them (2019-03-31, 2021-06-01, 2025-07-01-preview). */
const API_VERSION = /^\d{4}-\d{2}-\d{2}(-preview)?$/;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The register body. Empty (or whitespace only) means `{}`: the payload is optional, and firmware may
 * publish `iotdps-register` with nothing in it. Over `maxBytes` is 413, malformed JSON 400001,
 * wrong field types 400002.
 */
export function decodeRegisterBody(bytes: Buffer | string | undefined, maxBytes = Infinity): RegisterBody {
  const length = bytes === undefined ? 0 : typeof bytes === 'string' ? Buffer.byteLength(bytes) : bytes.length;
  if (length > maxBytes) throw Errors.payloadTooLarge(`The request body is larger than ${maxBytes} bytes.`);
  const text = bytes === undefined ? '' : bytes.toString('utf8');
  if (text.trim() === '') return {};
  return registerBodyOf(parseJson(text));
}

/** A body already parsed as JSON (absent or null means `{}`). */
export function registerBodyOf(value: unknown): RegisterBody {
  if (value === undefined || value === null) return {};
  if (!isObject(value)) throw Errors.invalidField('The request body must be a JSON object.');
  const { registrationId, tpm, payload, forceRegistration } = value;
  const body: RegisterBody = {};
  if (registrationId !== undefined && registrationId !== null) {
    if (typeof registrationId !== 'string') throw Errors.invalidField("'registrationId' must be a string.");
    body.registrationId = registrationId;
  }
  if (tpm !== undefined && tpm !== null) {
    if (!isObject(tpm) || typeof tpm.endorsementKey !== 'string') throw Errors.invalidField("'tpm.endorsementKey' must be a string.");
    const { endorsementKey, storageRootKey } = tpm;
    if (storageRootKey !== undefined && storageRootKey !== null && typeof storageRootKey !== 'string') {
      throw Errors.invalidField("'tpm.storageRootKey' must be a string.");
    }
    body.tpm = { endorsementKey, ...(typeof storageRootKey === 'string' ? { storageRootKey } : {}) };
  }
  if (forceRegistration !== undefined && forceRegistration !== null) {
    if (typeof forceRegistration !== 'boolean') throw Errors.invalidField("'forceRegistration' must be a boolean.");
    body.forceRegistration = forceRegistration;
  }
  if (payload !== undefined) body.payload = payload;
  return body;
}

/**
 * Registration ids are case-insensitive in DPS (docs/service-rest.md): the body's `registrationId`
 * may differ from the envelope's in case only. Another id is 400009.
 */
export function checkSameRegistration(envelopeId: string, bodyId: string | undefined): void {
  if (bodyId !== undefined && bodyId.toLowerCase() !== envelopeId.toLowerCase()) {
    throw Errors.idMismatch(`The body's registrationId '${bodyId}' does not match '${envelopeId}' of the request.`);
  }
}

/** Absent is accepted (any dated version is: Node sends 2019-03-31, the C SDK 2021-06-01); garbage is 400002. */
export function checkApiVersion(apiVersion: string | null | undefined): string | undefined {
  if (apiVersion === undefined || apiVersion === null || apiVersion === '') return undefined;
  if (!API_VERSION.test(apiVersion)) throw Errors.invalidField(`'api-version' must be a date such as 2021-06-01, not '${apiVersion.slice(0, 64)}'.`);
  return apiVersion;
}

/**
 * `forceRegistration` outside the body: a boolean (Node's AMQP property) or its text (query, other
 * clients). DPS documents no effect for it (the 2021-10-01 device spec does not list it): every
 * register already re-runs allocation under the enrollment's reprovision policy, forced or not. So
 * it is checked here, the same way on every transport, and carried in the request for the logs.
 */
export function forceRegistrationOf(value: unknown): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string' && /^(true|false)$/i.test(value)) return value.toLowerCase() === 'true';
  throw Errors.invalidField("'forceRegistration' must be true or false.");
}

/** The normalized request (ARCHITECTURE step 3) from the envelope and the decoded body. */
export function registrationRequest(envelope: RegisterEnvelope, body: RegisterBody): RegistrationRequest {
  checkSameRegistration(envelope.registrationId, body.registrationId);
  const apiVersion = checkApiVersion(envelope.apiVersion);
  const outside = forceRegistrationOf(envelope.forceRegistration);
  const force = outside === undefined && body.forceRegistration === undefined ? undefined : outside === true || body.forceRegistration === true;
  return {
    idScope: envelope.idScope,
    registrationId: envelope.registrationId,
    proof: envelope.proof,
    transport: envelope.transport,
    ...(body.payload === undefined ? {} : { payload: body.payload }),
    ...(envelope.clientAddress ? { clientAddress: envelope.clientAddress } : {}),
    ...(apiVersion ? { apiVersion } : {}),
    ...(force === undefined ? {} : { forceRegistration: force }),
  };
}
