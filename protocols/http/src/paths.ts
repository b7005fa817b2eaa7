/**
 * The device REST API's paths (docs/device-wire.md §4; device.json):
 *   PUT  /{idScope}/registrations/{registrationId}/register
 *   GET  /{idScope}/registrations/{registrationId}/operations/{operationId}
 *   POST /{idScope}/registrations/{registrationId}            (the spec's status lookup)
 */
export type DevicePath =
  | { kind: 'register'; idScope: string; registrationId: string }
  | { kind: 'operationStatus'; idScope: string; registrationId: string; operationId: string }
  | { kind: 'registrationStatus'; idScope: string; registrationId: string };

export type DevicePathKind = DevicePath['kind'];

/** The method each path answers; anything else is 405. */
export const METHOD_OF: Record<DevicePathKind, string> = {
  register: 'PUT',
  operationStatus: 'GET',
  registrationStatus: 'POST',
};

/**
 * First segments the service API owns on the same listener (`/registrations/{id}` there has no
 * ID scope in front). ID scopes (`0ne` + hex) never collide with them; other scope spellings are
 * accepted so that an unknown scope gets the service's coded 404 rather than a bare one.
 */
const SERVICE_API_SEGMENTS = new Set(['enrollments', 'enrollmentgroups', 'registrations']);

function isIdScopeSegment(segment: string): boolean {
  return segment !== '' && !SERVICE_API_SEGMENTS.has(segment.toLowerCase());
}

/** The raw (still percent-encoded) shape of a device path, or undefined when it is not one. */
function shape(pathname: string): { kind: DevicePathKind; segments: string[] } | undefined {
  const segments = pathname.split('/');
  if (segments[0] !== '' || segments.some((segment, index) => index > 0 && segment === '')) return undefined;
  const [, idScope = '', collection = '', , action, , ...rest] = segments;
  if (!isIdScopeSegment(idScope) || collection.toLowerCase() !== 'registrations' || rest.length > 0) return undefined;
  switch (segments.length) {
    case 4:
      return { kind: 'registrationStatus', segments };
    case 5:
      return action?.toLowerCase() === 'register' ? { kind: 'register', segments } : undefined;
    case 6:
      return action?.toLowerCase() === 'operations' ? { kind: 'operationStatus', segments } : undefined;
    default:
      return undefined;
  }
}

export function isDevicePath(pathname: string): boolean {
  return shape(pathname) !== undefined;
}

/**
 * Parses a device path, decoding its segments. Undefined when the path is not a device path;
 * throws URIError on malformed percent-encoding.
 */
export function parseDevicePath(pathname: string): DevicePath | undefined {
  const found = shape(pathname);
  if (!found) return undefined;
  const [, idScope = '', , registrationId = '', , operationId = ''] = found.segments.map((segment) => decodeURIComponent(segment));
  switch (found.kind) {
    case 'register':
      return { kind: 'register', idScope, registrationId };
    case 'operationStatus':
      return { kind: 'operationStatus', idScope, registrationId, operationId };
    case 'registrationStatus':
      return { kind: 'registrationStatus', idScope, registrationId };
  }
}
