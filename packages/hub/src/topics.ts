/**
 * The IoT Hub device MQTT topics (docs/device-wire.md §8). Devices may publish only these shapes and
 * subscribe only to their own topic filters; anything else is refused.
 */
export type DevicePublish =
  | { kind: 'telemetry'; propertyBag: string }
  | { kind: 'twinGet'; rid: string }
  | { kind: 'twinPatchReported'; rid: string }
  | { kind: 'methodResponse'; rid: string; status: number }
  /** A hub topic the device may use, but malformed (no `$rid`): the connection is closed. */
  | { kind: 'malformed'; reason: string };

const TWIN_GET = '$iothub/twin/GET/';
const TWIN_PATCH_REPORTED = '$iothub/twin/PATCH/properties/reported/';
const METHOD_RESPONSE = /^\$iothub\/methods\/res\/(\d{3})\/(\?.*)?$/;

/** Classifies a device's PUBLISH topic; undefined means the device may not publish there. */
export function classifyPublish(deviceId: string, topic: string): DevicePublish | undefined {
  const events = `devices/${deviceId}/messages/events`;
  if (topic === events) return { kind: 'telemetry', propertyBag: '' };
  if (topic.startsWith(`${events}/`)) return { kind: 'telemetry', propertyBag: topic.slice(events.length + 1) };
  if (topic.startsWith(TWIN_GET)) return withRid(topic.slice(TWIN_GET.length), (rid) => ({ kind: 'twinGet', rid }));
  if (topic.startsWith(TWIN_PATCH_REPORTED)) {
    return withRid(topic.slice(TWIN_PATCH_REPORTED.length), (rid) => ({ kind: 'twinPatchReported', rid }));
  }
  const method = METHOD_RESPONSE.exec(topic);
  if (method) return withRid(method[2] ?? '', (rid) => ({ kind: 'methodResponse', rid, status: Number(method[1]) }));
  return undefined;
}

function withRid(query: string, build: (rid: string) => DevicePublish): DevicePublish {
  const rid = queryParameter(query, '$rid');
  if (!rid || rid.length > 128) return { kind: 'malformed', reason: 'A twin or method request needs a $rid.' };
  return build(rid);
}

/** A parameter of `?a=b&c=d`, as sent (the SDK sends `$rid` unencoded; the hub echoes it verbatim). */
export function queryParameter(query: string, name: string): string | undefined {
  if (!query.startsWith('?')) return undefined;
  for (const part of query.slice(1).split('&')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at) === name) return part.slice(at + 1);
  }
  return undefined;
}

/** The filters a device may subscribe to (the SDK subscribes one at a time, lazily). */
export function allowedSubscriptions(deviceId: string): ReadonlySet<string> {
  return new Set([
    `devices/${deviceId}/messages/devicebound/#`,
    '$iothub/methods/POST/#',
    '$iothub/twin/res/#',
    '$iothub/twin/PATCH/properties/desired/#',
  ]);
}

export function twinResponseTopic(status: number, rid: string, version?: number): string {
  return `$iothub/twin/res/${status}/?$rid=${rid}${version === undefined ? '' : `&$version=${version}`}`;
}

export function desiredPatchTopic(version: number): string {
  return `$iothub/twin/PATCH/properties/desired/?$version=${version}`;
}

/** Telemetry properties from the topic's property bag (`%24.mid=…&key=value`), decoded when possible. */
export function parsePropertyBag(bag: string): Record<string, string> {
  const properties: Record<string, string> = {};
  for (const part of bag.split('&')) {
    if (!part) continue;
    const at = part.indexOf('=');
    const key = at < 0 ? part : part.slice(0, at);
    const value = at < 0 ? '' : part.slice(at + 1);
    properties[safeDecode(key)] = safeDecode(value);
  }
  return properties;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
