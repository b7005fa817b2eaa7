/**
 * The initial-twin rules of the server (packages/model/src/twin-limits.ts, docs/service-rest.md §3),
 * mirrored for the browser: that module counts bytes with Node's Buffer and throws the server's coded
 * errors, so it cannot be bundled as it is. test/console-enrollments.test.ts runs both on the same
 * cases, so the two cannot drift apart unnoticed.
 */
export const TWIN_LIMITS = {
  maxDepth: 10,
  maxKeyBytes: 1024,
  maxStringBytes: 4 * 1024,
  tagsBytes: 8 * 1024,
  desiredBytes: 32 * 1024,
  minInteger: -4503599627370496,
  maxInteger: 4503599627370495,
} as const;

// eslint-disable-next-line no-control-regex
const FORBIDDEN_KEY = /[.$ \u0000-\u001f\u007f-\u009f]/;
const NUMBER_BYTES = 8;
const BOOLEAN_BYTES = 4;
const encoder = new TextEncoder();
const bytesOf = (text: string) => encoder.encode(text).length;

/** The problem with one twin section, in the server's words, or undefined when it is acceptable. */
export function twinSectionProblem(section: Record<string, unknown>, field: string, maxBytes: number): string | undefined {
  const stack: { value: unknown; depth: number; path: string }[] = [];
  let size = 0;
  try {
    for (const [key, value] of Object.entries(section)) {
      const path = `${field}.${key.slice(0, 64)}`;
      if (key.startsWith('$')) stack.push({ value, depth: 1, path: '' });
      else {
        size += keyBytes(key, path, field);
        stack.push({ value, depth: 1, path });
      }
    }
    for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
      const { value, depth, path } = next;
      const counted = path !== '';
      if (typeof value === 'string') {
        const bytes = bytesOf(value);
        if (bytes > TWIN_LIMITS.maxStringBytes) return `${field}: the string at ${path} is ${bytes} bytes; at most ${TWIN_LIMITS.maxStringBytes} are allowed.`;
        if (counted) size += bytes;
      } else if (typeof value === 'number') {
        if (Number.isInteger(value) && (value < TWIN_LIMITS.minInteger || value > TWIN_LIMITS.maxInteger)) {
          return `${field}: the integer at ${path} is outside ${TWIN_LIMITS.minInteger}..${TWIN_LIMITS.maxInteger}.`;
        }
        if (counted) size += NUMBER_BYTES;
      } else if (typeof value === 'boolean') {
        if (counted) size += BOOLEAN_BYTES;
      } else if (typeof value === 'object' && value !== null) {
        if (depth > TWIN_LIMITS.maxDepth) return `${field}: nested deeper than ${TWIN_LIMITS.maxDepth} levels.`;
        const entries = Array.isArray(value) ? value.map((item, index) => [String(index), item] as const) : Object.entries(value);
        for (const [key, child] of entries) {
          const childPath = counted ? `${path}.${key.slice(0, 64)}` : '';
          if (counted && !Array.isArray(value)) size += keyBytes(key, childPath, field);
          stack.push({ value: child, depth: depth + 1, path: childPath });
        }
      }
      if (size > maxBytes) return `${field}: more than ${maxBytes / 1024} KB.`;
    }
  } catch (error) {
    return (error as Error).message;
  }
  return undefined;
}

function keyBytes(key: string, path: string, field: string): number {
  const bytes = bytesOf(key);
  if (key === '' || FORBIDDEN_KEY.test(key)) throw new Error(`${field}: '${path}' is not a valid property name (no '.', '$', space or control characters).`);
  if (bytes > TWIN_LIMITS.maxKeyBytes) throw new Error(`${field}: a property name is ${bytes} bytes; at most ${TWIN_LIMITS.maxKeyBytes} are allowed.`);
  return bytes;
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Parses and checks an initial twin `{tags?, properties?: {desired?}}` as the server would
 * (packages/model/src/validation.ts): the value to send, or the first problem in words.
 */
export function checkInitialTwin(text: string): { twin?: Record<string, unknown>; problem?: string } {
  if (text.trim() === '') return {};
  let twin: unknown;
  try {
    twin = JSON.parse(text);
  } catch (error) {
    return { problem: `Not valid JSON: ${(error as Error).message}` };
  }
  if (!isObject(twin)) return { problem: 'initialTwin must be a JSON object: {"tags": {…}, "properties": {"desired": {…}}}.' };
  const { tags, properties } = twin;
  if (tags !== undefined && tags !== null && !isObject(tags)) return { problem: 'initialTwin.tags must be an object.' };
  if (properties !== undefined && properties !== null && !isObject(properties)) return { problem: 'initialTwin.properties must be an object.' };
  const desired = isObject(properties) ? properties.desired : undefined;
  if (desired !== undefined && desired !== null && !isObject(desired)) return { problem: 'initialTwin.properties.desired must be an object.' };
  const problem =
    (isObject(tags) ? twinSectionProblem(tags, 'initialTwin.tags', TWIN_LIMITS.tagsBytes) : undefined) ??
    (isObject(desired) ? twinSectionProblem(desired, 'initialTwin.properties.desired', TWIN_LIMITS.desiredBytes) : undefined);
  return problem ? { problem } : { twin };
}
