import { Errors, type DpsError, type TwinCollection } from '@opendps/model';
import type { BuiltInHub } from '../builtin-hub';
import type { DeviceDocument, DevicePrecondition } from '../registry';
import { isCollection } from '../twin';
import type { RestRequest, RestResult } from './types';
import { deviceEtag, ifMatchHolds, twinEtag, twinJson } from './views';

function notFound(deviceId: string): DpsError {
  return Errors.deviceNotFound(`Device '${deviceId}' is not registered on this hub.`);
}

export async function getTwin(hub: BuiltInHub, deviceId: string): Promise<RestResult> {
  const doc = await hub.registry.get(deviceId);
  if (!doc) throw notFound(deviceId);
  return twinResult(hub, doc);
}

/**
 * `PATCH /twins/{id}`: tags and desired properties merge-patched (null deletes), under If-Match on
 * the twin etag (azure-iothub always sends one; `*` matches any). Reported properties belong to the
 * device: a patch naming them is refused rather than silently dropped.
 */
export async function patchTwin(hub: BuiltInHub, deviceId: string, request: RestRequest): Promise<RestResult> {
  const { tags, desired, reported } = twinSections(request.body);
  if (reported !== undefined) throw Errors.invalidField('Reported properties are written by the device, not the service.');
  const doc = await hub.patchTwin(
    deviceId,
    { ...(tags !== undefined ? { tags } : {}), ...(desired !== undefined ? { desired } : {}) },
    twinPrecondition(deviceId, request.ifMatch),
  );
  return twinResult(hub, doc);
}

/**
 * `PUT /twins/{id}`: replaces tags and desired properties (absent ones become empty). Reported
 * properties in the body are ignored: clients put back a twin they read, reported section included.
 */
export async function replaceTwin(hub: BuiltInHub, deviceId: string, request: RestRequest): Promise<RestResult> {
  const { tags, desired } = twinSections(request.body);
  const read = await hub.registry.get(deviceId);
  if (!read) throw notFound(deviceId);
  const matches = twinPrecondition(deviceId, request.ifMatch);
  const readIdentity = deviceEtag(read);
  const { current } = await hub.writeDevice(read.identity, { tags: tags ?? {}, desired: desired ?? {} }, (current) => {
    matches(current);
    // The identity is written back as read: refuse if it changed in between.
    if (current && deviceEtag(current) !== readIdentity) throw Errors.preconditionFailed(`Device '${deviceId}' changed concurrently.`);
  });
  return twinResult(hub, current);
}

function twinPrecondition(deviceId: string, ifMatch: string | undefined): DevicePrecondition {
  return (current) => {
    if (!current) throw notFound(deviceId);
    if (ifMatch !== undefined && !ifMatchHolds(ifMatch, twinEtag(current))) throw Errors.preconditionFailed();
  };
}

function twinSections(body: unknown): { tags?: TwinCollection; desired?: TwinCollection; reported?: unknown } {
  if (!isCollection(body)) throw Errors.invalidJson('The twin must be a JSON object.');
  const { tags, properties } = body;
  if (tags !== undefined && tags !== null && !isCollection(tags)) throw Errors.invalidField('tags must be a JSON object.');
  if (properties !== undefined && properties !== null && !isCollection(properties)) {
    throw Errors.invalidField('properties must be a JSON object.');
  }
  const sections = isCollection(properties) ? properties : {};
  const desired = sections.desired;
  if (desired !== undefined && desired !== null && !isCollection(desired)) {
    throw Errors.invalidField('properties.desired must be a JSON object.');
  }
  return {
    ...(isCollection(tags) ? { tags } : {}),
    ...(isCollection(desired) ? { desired } : {}),
    ...(sections.reported !== undefined ? { reported: sections.reported } : {}),
  };
}

export function twinResult(hub: BuiltInHub, doc: DeviceDocument): RestResult {
  return { status: 200, body: twinJson(doc, hub.isConnected(doc.identity.deviceId)), headers: { etag: `"${twinEtag(doc)}"` } };
}
