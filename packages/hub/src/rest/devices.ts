import { Errors, generateSymmetricKey, type DpsError, type TwinCollection } from '@opendps/model';
import type { BuiltInHub } from '../builtin-hub';
import type { DeviceDocument, DevicePrecondition } from '../registry';
import { validateIdentity } from '../registry';
import { isCollection } from '../twin';
import type { RestRequest, RestResult } from './types';
import { deviceEtag, deviceJson, ifMatchHolds, twinJson } from './views';

/** `top` of `GET /devices` and the page size of a query: IoT Hub's default and maximum. */
const MAX_PAGE = 1000;
const DEFAULT_QUERY_PAGE = 100;
const ALL_DEVICES_QUERY = /^\s*select\s+\*\s+from\s+devices\s*$/i;

function notFound(deviceId: string): DpsError {
  return Errors.deviceNotFound(`Device '${deviceId}' is not registered on this hub.`);
}

export async function getDevice(hub: BuiltInHub, deviceId: string): Promise<RestResult> {
  const doc = await hub.registry.get(deviceId);
  if (!doc) throw notFound(deviceId);
  return deviceResult(hub, doc);
}

/**
 * `PUT /devices/{id}` as IoT Hub answers it: without If-Match it creates (409 if the device exists);
 * with If-Match (`*` or an etag) it updates (404 if missing, 412 on a stale etag); `If-None-Match: *`
 * only creates (412 if it exists). Keys left empty (azure-iothub sends `''` when none were given)
 * are kept from the existing device or generated, as IoT Hub does.
 */
export async function putDevice(hub: BuiltInHub, deviceId: string, request: RestRequest): Promise<RestResult> {
  const body = request.body;
  if (!isCollection(body)) throw Errors.invalidJson('The device must be a JSON object.');
  if (body.deviceId !== undefined && body.deviceId !== deviceId) {
    throw Errors.idMismatch(`The body's deviceId '${String(body.deviceId)}' differs from the path's '${deviceId}'.`);
  }
  const existing = await hub.registry.get(deviceId);
  const identity = validateIdentity({ ...body, deviceId, authentication: withKeys(body.authentication, existing) });
  const { ifMatch, ifNoneMatch } = request;
  const precondition: DevicePrecondition = (current) => {
    if (ifNoneMatch === '*' && current) throw Errors.preconditionFailed(`Device '${deviceId}' already exists.`);
    if (ifMatch === undefined) {
      if (current) throw Errors.conflict(`A device with id '${deviceId}' is already registered.`);
      return;
    }
    if (!current) throw notFound(deviceId);
    if (!ifMatchHolds(ifMatch, deviceEtag(current))) throw Errors.preconditionFailed();
  };
  const { current } = await hub.writeDevice(identity, undefined, precondition);
  return deviceResult(hub, current);
}

export async function deleteDevice(hub: BuiltInHub, deviceId: string, request: RestRequest): Promise<RestResult> {
  const { ifMatch } = request;
  const deleted = await hub.removeDevice(deviceId, (current) => {
    if (current && ifMatch !== undefined && !ifMatchHolds(ifMatch, deviceEtag(current))) throw Errors.preconditionFailed();
  });
  if (!deleted) throw notFound(deviceId);
  return { status: 204 };
}

/** `GET /devices?top=n`: the first n devices (IoT Hub's legacy list, at most 1000). */
export async function listDevices(hub: BuiltInHub, request: RestRequest): Promise<RestResult> {
  const top = pageSize(request.query.get('top') ?? undefined, MAX_PAGE, 'top');
  const { devices } = await hub.registry.list({ pageSize: top });
  return { status: 200, body: devices.map((doc) => deviceJson(doc, hub.isConnected(doc.identity.deviceId))) };
}

/**
 * `POST /devices/query` with `SELECT * FROM devices` (the only query supported): twins, paged by
 * `x-ms-max-item-count`; `x-ms-continuation` is sent only while more pages remain, since the SDK's
 * `hasMoreResults` is just its presence.
 */
export async function queryDevices(hub: BuiltInHub, request: RestRequest): Promise<RestResult> {
  const body = request.body;
  const query = isCollection(body) ? body.query : undefined;
  if (typeof query !== 'string' || !ALL_DEVICES_QUERY.test(query)) {
    throw Errors.invalidQuery("Only 'SELECT * FROM devices' is supported.");
  }
  const size = pageSize(request.headers['x-ms-max-item-count'], MAX_PAGE, 'x-ms-max-item-count', DEFAULT_QUERY_PAGE);
  const continuation = request.headers['x-ms-continuation'];
  const page = await hub.registry.list({ pageSize: size, ...(continuation ? { continuation } : {}) });
  return {
    status: 200,
    body: page.devices.map((doc) => twinJson(doc, hub.isConnected(doc.identity.deviceId))),
    headers: { 'x-ms-item-type': 'Twin', ...(page.continuation ? { 'x-ms-continuation': page.continuation } : {}) },
  };
}

export function deviceResult(hub: BuiltInHub, doc: DeviceDocument): RestResult {
  const body = deviceJson(doc, hub.isConnected(doc.identity.deviceId));
  return { status: 200, body, headers: { etag: `"${deviceEtag(doc)}"` } };
}

function pageSize(value: string | undefined, max: number, what: string, fallback = max): number {
  if (value === undefined || value === '') return fallback;
  const size = Number(value);
  if (!Number.isInteger(size) || size < 1 || size > max) throw Errors.invalidField(`${what} is an integer from 1 to ${max}.`);
  return size;
}

/** The authentication with empty symmetric keys filled in (kept from the device, else generated). */
function withKeys(authentication: unknown, existing: DeviceDocument | undefined): unknown {
  const given: TwinCollection = isCollection(authentication) ? authentication : { type: 'sas' };
  const type = given.type ?? (isCollection(given.x509Thumbprint) && given.x509Thumbprint.primaryThumbprint ? 'selfSigned' : 'sas');
  if (type === 'certificateAuthority' || type === 'none') {
    throw Errors.invalidField(`authentication.type '${type}' is not supported by the built-in hub; use 'sas' or 'selfSigned'.`);
  }
  if (type !== 'sas') return { ...given, type };
  const keys = isCollection(given.symmetricKey) ? given.symmetricKey : {};
  const previous = existing?.identity.authentication.type === 'sas' ? existing.identity.authentication.symmetricKey : undefined;
  const pick = (value: unknown, kept: string | undefined): unknown => (value === undefined || value === null || value === '' ? kept ?? generateSymmetricKey() : value);
  return {
    type: 'sas',
    symmetricKey: { primaryKey: pick(keys.primaryKey, previous?.primaryKey), secondaryKey: pick(keys.secondaryKey, previous?.secondaryKey) },
  };
}
