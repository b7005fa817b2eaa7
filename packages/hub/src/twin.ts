import { Errors, type TwinCollection } from '@opendps/model';

/**
 * Twin documents as IoT Hub keeps them: tags (service-only), desired and reported properties, each
 * properties section with its own `$version` that grows by one on every change.
 */
export interface StoredTwin {
  tags: TwinCollection;
  desired: TwinCollection;
  reported: TwinCollection;
  desiredVersion: number;
  reportedVersion: number;
}

/** IoT Hub's documented limits: nesting depth 10, 32 KB per properties section, 1 KB keys. */
const MAX_DEPTH = 10;
const MAX_SECTION_BYTES = 32 * 1024;
const MAX_KEY_BYTES = 1024;
// Keys may not contain `.`, `$`, space or control characters (IoT Hub device twin rules).
// eslint-disable-next-line no-control-regex
const FORBIDDEN_KEY = /[.$ \u0000-\u001f\u007f-\u009f]/;

export function emptyTwin(): StoredTwin {
  return { tags: {}, desired: {}, reported: {}, desiredVersion: 1, reportedVersion: 1 };
}

export function isCollection(value: unknown): value is TwinCollection {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Checks a section or a patch written by a device or the service. The top-level `$version` and
 * `$metadata` that clients echo back are dropped (the hub owns them); any other `$` key is refused.
 * `allowNull` admits merge-patch deletions.
 */
export function validateSection(value: unknown, what: string, allowNull: boolean): TwinCollection {
  if (!isCollection(value)) throw Errors.invalidField(`The ${what} must be a JSON object.`);
  const { $version: _version, $metadata: _metadata, ...rest } = value;
  // The section itself is level 0, as the service API counts an initial twin (model twin-limits).
  checkCollection(rest, what, allowNull, 0);
  return rest;
}

function checkCollection(value: TwinCollection, what: string, allowNull: boolean, depth: number): void {
  if (depth > MAX_DEPTH) throw Errors.invalidField(`The ${what} is nested deeper than ${MAX_DEPTH} levels.`);
  for (const [key, child] of Object.entries(value)) {
    if (key === '' || FORBIDDEN_KEY.test(key) || Buffer.byteLength(key) > MAX_KEY_BYTES) {
      throw Errors.invalidField(`The ${what} has an invalid property name '${key.slice(0, 64)}'.`);
    }
    if (child === null && !allowNull) throw Errors.invalidField(`The ${what} may not hold null ('${key}').`);
    if (isCollection(child)) checkCollection(child, what, allowNull, depth + 1);
    else if (Array.isArray(child)) checkArray(child, what, depth + 1);
  }
}

/** Arrays count towards the depth too: unchecked, a deeply nested one overflowed the stack of JSON.stringify. */
function checkArray(value: unknown[], what: string, depth: number): void {
  if (depth > MAX_DEPTH) throw Errors.invalidField(`The ${what} is nested deeper than ${MAX_DEPTH} levels.`);
  for (const element of value) {
    if (isCollection(element)) checkCollection(element, what, false, depth + 1);
    else if (Array.isArray(element)) checkArray(element, what, depth + 1);
  }
}

/** RFC 7396 JSON merge patch: objects merge, null deletes, anything else replaces. Never mutates. */
export function mergePatch(target: TwinCollection, patch: TwinCollection): TwinCollection {
  const result: TwinCollection = { ...target };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else if (isCollection(value)) {
      const current = result[key];
      result[key] = mergePatch(isCollection(current) ? current : {}, value);
    } else result[key] = value;
  }
  return result;
}

export function assertSectionSize(section: TwinCollection, what: string): void {
  if (Buffer.byteLength(JSON.stringify(section)) > MAX_SECTION_BYTES) {
    throw Errors.payloadTooLarge(`The ${what} exceed ${MAX_SECTION_BYTES / 1024} KB.`);
  }
}

/** The twin as the device sees it (`GET`): no tags, each section with its `$version`. */
export function deviceView(twin: StoredTwin): { desired: TwinCollection; reported: TwinCollection } {
  return {
    desired: { ...twin.desired, $version: twin.desiredVersion },
    reported: { ...twin.reported, $version: twin.reportedVersion },
  };
}
