import { Errors } from './errors';
import type { TwinCollection } from './types';

/**
 * IoT Hub's documented device twin limits (docs/service-rest.md §3, "InitialTwin"): what a hub
 * would refuse later is refused when the enrollment is written.
 */
export const TWIN_LIMITS = {
  /** Objects (and arrays) nest at most 10 levels below `tags` or `properties.desired`. */
  maxDepth: 10,
  maxKeyBytes: 1024,
  maxStringBytes: 4 * 1024,
  tagsBytes: 8 * 1024,
  desiredBytes: 32 * 1024,
  minInteger: -4503599627370496,
  maxInteger: 4503599627370495,
} as const;

// Keys exclude `.`, `$`, space and the C0 and C1 control characters.
// eslint-disable-next-line no-control-regex
const FORBIDDEN_KEY = /[.$ \u0000-\u001f\u007f-\u009f]/;
/** IoT Hub's size rule: keys and strings count their UTF-8 bytes, numbers 8, booleans 4. */
const NUMBER_BYTES = 8;
const BOOLEAN_BYTES = 4;

interface Pending {
  value: unknown;
  depth: number;
  path: string;
}

/**
 * Checks one twin section (`tags` or `properties.desired`) without recursion, so no nesting can
 * exhaust the stack: anything deeper than the limit is refused before it is walked. Top-level
 * `$` keys (`$version`, `$metadata` echoed by read-modify-write clients) are read-only elements
 * the size excludes; they are still bounded in depth.
 */
export function assertTwinSection(section: TwinCollection, field: string, maxBytes: number): void {
  const refuse = (detail: string) => Errors.invalidInitialTwin(`${field}: ${detail}`);
  const stack: Pending[] = [];
  let size = 0;
  for (const [key, value] of Object.entries(section)) {
    const path = `${field}.${key.slice(0, 64)}`;
    if (key.startsWith('$')) stack.push({ value, depth: 1, path: '' });
    else {
      size += checkKey(key, path, refuse);
      stack.push({ value, depth: 1, path });
    }
  }
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const { value, depth, path } = next;
    const counted = path !== '';
    if (typeof value === 'string') {
      const bytes = Buffer.byteLength(value);
      if (bytes > TWIN_LIMITS.maxStringBytes) throw refuse(`the string at ${path} is ${bytes} bytes; at most ${TWIN_LIMITS.maxStringBytes} are allowed.`);
      if (counted) size += bytes;
    } else if (typeof value === 'number') {
      if (Number.isInteger(value) && (value < TWIN_LIMITS.minInteger || value > TWIN_LIMITS.maxInteger)) {
        throw refuse(`the integer at ${path} is outside ${TWIN_LIMITS.minInteger}..${TWIN_LIMITS.maxInteger}.`);
      }
      if (counted) size += NUMBER_BYTES;
    } else if (typeof value === 'boolean') {
      if (counted) size += BOOLEAN_BYTES;
    } else if (typeof value === 'object' && value !== null) {
      if (depth > TWIN_LIMITS.maxDepth) throw refuse(`nested deeper than ${TWIN_LIMITS.maxDepth} levels.`);
      const entries = Array.isArray(value) ? value.map((item, index) => [String(index), item] as const) : Object.entries(value);
      for (const [key, child] of entries) {
        const childPath = counted ? `${path}.${key.slice(0, 64)}` : '';
        if (counted && !Array.isArray(value)) size += checkKey(key, childPath, refuse);
        stack.push({ value: child, depth: depth + 1, path: childPath });
      }
    }
    if (size > maxBytes) throw refuse(`more than ${maxBytes / 1024} KB.`);
  }
}

function checkKey(key: string, path: string, refuse: (detail: string) => Error): number {
  const bytes = Buffer.byteLength(key);
  if (key === '' || FORBIDDEN_KEY.test(key)) throw refuse(`'${path}' is not a valid property name (no '.', '$', space or control characters).`);
  if (bytes > TWIN_LIMITS.maxKeyBytes) throw refuse(`a property name is ${bytes} bytes; at most ${TWIN_LIMITS.maxKeyBytes} are allowed.`);
  return bytes;
}
