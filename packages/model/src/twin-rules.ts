/**
 * IoT Hub's documented device twin limits (docs/service-rest.md §3, "InitialTwin") as one walk with
 * no dependency on Node or on the server's errors, so the web console bundles this same file and
 * refuses in the page exactly what the server would refuse (model twin-limits.ts throws the codes).
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
const encoder = new TextEncoder();

/** How one twin section is walked: where it came from, and what it may hold. */
export interface TwinSectionShape {
  /** Names the section in the problem's words (`initialTwin.tags`, `desired properties patch`). */
  field: string;
  /** The size limit, by IoT Hub's rule. */
  maxBytes: number;
  /** Merge patches delete with null; whole sections written by a device may not hold it. Default true. */
  allowNull?: boolean;
  /**
   * Top-level `$` keys: `readOnly` (default) skips them in the size, as the read-only `$version` and
   * `$metadata` that read-modify-write clients echo back; `refuse` treats them as invalid names.
   */
  dollarKeys?: 'readOnly' | 'refuse';
  /** UTF-8 length of a string (Node passes Buffer.byteLength; the default encodes). */
  byteLength?: (text: string) => number;
}

/** What is wrong with a section: too large (413 on a hub) or invalid, in words. */
export interface TwinProblem {
  kind: 'invalid' | 'tooLarge';
  detail: string;
}

interface Pending {
  value: unknown;
  depth: number;
  path: string;
}

class Refusal {
  constructor(readonly detail: string) {}
}

/**
 * The first problem of one twin section (`tags`, desired or reported properties, or a patch of one),
 * or undefined. No recursion, so no nesting can exhaust the stack: anything deeper than the limit is
 * refused before it is walked.
 */
export function twinSectionProblem(section: Record<string, unknown>, shape: TwinSectionShape): TwinProblem | undefined {
  // An empty section (the tags and desired properties of most registrations) holds nothing to refuse.
  if (isEmpty(section)) return undefined;
  const { field, maxBytes } = shape;
  const byteLength = shape.byteLength ?? ((text: string) => encoder.encode(text).length);
  const allowNull = shape.allowNull ?? true;
  const invalid = (detail: string): TwinProblem => ({ kind: 'invalid', detail });
  const keyBytes = (key: string, path: string): number => {
    const bytes = byteLength(key);
    if (key === '' || FORBIDDEN_KEY.test(key)) throw new Refusal(`'${path}' is not a valid property name (no '.', '$', space or control characters).`);
    if (bytes > TWIN_LIMITS.maxKeyBytes) throw new Refusal(`a property name is ${bytes} bytes; at most ${TWIN_LIMITS.maxKeyBytes} are allowed.`);
    return bytes;
  };
  const stack: Pending[] = [];
  let size = 0;
  try {
    for (const [key, value] of Object.entries(section)) {
      const path = `${field}.${key.slice(0, 64)}`;
      if (key.startsWith('$') && shape.dollarKeys !== 'refuse') stack.push({ value, depth: 1, path: '' });
      else {
        size += keyBytes(key, path);
        stack.push({ value, depth: 1, path });
      }
    }
    for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
      const { value, depth, path } = next;
      const counted = path !== '';
      if (typeof value === 'string') {
        const bytes = byteLength(value);
        if (bytes > TWIN_LIMITS.maxStringBytes) return invalid(`the string at ${path} is ${bytes} bytes; at most ${TWIN_LIMITS.maxStringBytes} are allowed.`);
        if (counted) size += bytes;
      } else if (typeof value === 'number') {
        if (Number.isInteger(value) && (value < TWIN_LIMITS.minInteger || value > TWIN_LIMITS.maxInteger)) {
          return invalid(`the integer at ${path} is outside ${TWIN_LIMITS.minInteger}..${TWIN_LIMITS.maxInteger}.`);
        }
        if (counted) size += NUMBER_BYTES;
      } else if (typeof value === 'boolean') {
        if (counted) size += BOOLEAN_BYTES;
      } else if (value === null) {
        if (!allowNull && counted) return invalid(`${path} is null; null only deletes, in a patch.`);
      } else if (typeof value === 'object') {
        if (depth > TWIN_LIMITS.maxDepth) return invalid(`nested deeper than ${TWIN_LIMITS.maxDepth} levels.`);
        const isArray = Array.isArray(value);
        const entries = isArray ? value.map((item, index) => [String(index), item] as const) : Object.entries(value);
        for (const [key, child] of entries) {
          const childPath = counted ? `${path}.${key.slice(0, 64)}` : '';
          if (counted && !isArray) size += keyBytes(key, childPath);
          // Arrays hold values, not properties: null in an array is a value even outside a patch.
          if (isArray && child === null) continue;
          stack.push({ value: child, depth: depth + 1, path: childPath });
        }
      }
      if (size > maxBytes) return { kind: 'tooLarge', detail: `more than ${maxBytes / 1024} KB.` };
    }
  } catch (error) {
    if (error instanceof Refusal) return invalid(error.detail);
    throw error;
  }
  return undefined;
}

function isEmpty(section: Record<string, unknown>): boolean {
  for (const _key in section) return false;
  return true;
}
