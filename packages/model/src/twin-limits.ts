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
  reportedBytes: 32 * 1024,
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

/** How one twin section is held to the limits: where it came from, and what a refusal is. */
export interface TwinSectionRules {
  /** Names the section in refusals (`initialTwin.tags`, `desired properties patch`). */
  field: string;
  /** IoT Hub's size rule applies: keys and strings count their UTF-8 bytes, numbers 8, booleans 4. */
  maxBytes: number;
  /** Merge patches delete with null; whole sections written by a device may not hold it. Default true. */
  allowNull?: boolean;
  /**
   * Top-level `$` keys: `readOnly` (default) skips them in the size, as the read-only `$version` and
   * `$metadata` that read-modify-write clients echo back; `refuse` treats them as invalid names.
   */
  dollarKeys?: 'readOnly' | 'refuse';
  /** The error for an invalid section (default: 400017 invalid initial twin). */
  invalid?: (detail: string) => Error;
  /** The error for a section past `maxBytes` (default: `invalid`). */
  tooLarge?: (detail: string) => Error;
}

/**
 * Checks one twin section (`tags`, desired or reported properties, or a patch of one) without
 * recursion, so no nesting can exhaust the stack: anything deeper than the limit is refused before
 * it is walked. Used by enrollments (initial twins) and by the built-in hub (twin writes).
 */
export function checkTwinSection(section: TwinCollection, rules: TwinSectionRules): void {
  const { field, maxBytes } = rules;
  const invalid = rules.invalid ?? ((detail: string) => Errors.invalidInitialTwin(`${field}: ${detail}`));
  const tooLarge = rules.tooLarge ?? invalid;
  const allowNull = rules.allowNull ?? true;
  const stack: Pending[] = [];
  let size = 0;
  for (const [key, value] of Object.entries(section)) {
    const path = `${field}.${key.slice(0, 64)}`;
    if (key.startsWith('$') && rules.dollarKeys !== 'refuse') stack.push({ value, depth: 1, path: '' });
    else {
      size += checkKey(key, path, invalid);
      stack.push({ value, depth: 1, path });
    }
  }
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const { value, depth, path } = next;
    const counted = path !== '';
    if (typeof value === 'string') {
      const bytes = Buffer.byteLength(value);
      if (bytes > TWIN_LIMITS.maxStringBytes) throw invalid(`the string at ${path} is ${bytes} bytes; at most ${TWIN_LIMITS.maxStringBytes} are allowed.`);
      if (counted) size += bytes;
    } else if (typeof value === 'number') {
      if (Number.isInteger(value) && (value < TWIN_LIMITS.minInteger || value > TWIN_LIMITS.maxInteger)) {
        throw invalid(`the integer at ${path} is outside ${TWIN_LIMITS.minInteger}..${TWIN_LIMITS.maxInteger}.`);
      }
      if (counted) size += NUMBER_BYTES;
    } else if (typeof value === 'boolean') {
      if (counted) size += BOOLEAN_BYTES;
    } else if (value === null) {
      if (!allowNull && counted) throw invalid(`${path} is null; null only deletes, in a patch.`);
    } else if (typeof value === 'object') {
      if (depth > TWIN_LIMITS.maxDepth) throw invalid(`nested deeper than ${TWIN_LIMITS.maxDepth} levels.`);
      const isArray = Array.isArray(value);
      const entries = isArray ? value.map((item, index) => [String(index), item] as const) : Object.entries(value);
      for (const [key, child] of entries) {
        const childPath = counted ? `${path}.${key.slice(0, 64)}` : '';
        if (counted && !isArray) size += checkKey(key, childPath, invalid);
        // Arrays hold values, not properties: null in an array is a value even in a patch.
        if (isArray && child === null) continue;
        stack.push({ value: child, depth: depth + 1, path: childPath });
      }
    }
    if (size > maxBytes) throw tooLarge(`more than ${maxBytes / 1024} KB.`);
  }
}

/** An initial twin's section, as an enrollment write checks it (docs/service-rest.md §3). */
export function assertTwinSection(section: TwinCollection, field: string, maxBytes: number): void {
  checkTwinSection(section, { field, maxBytes });
}

function checkKey(key: string, path: string, refuse: (detail: string) => Error): number {
  const bytes = Buffer.byteLength(key);
  if (key === '' || FORBIDDEN_KEY.test(key)) throw refuse(`'${path}' is not a valid property name (no '.', '$', space or control characters).`);
  if (bytes > TWIN_LIMITS.maxKeyBytes) throw refuse(`a property name is ${bytes} bytes; at most ${TWIN_LIMITS.maxKeyBytes} are allowed.`);
  return bytes;
}
