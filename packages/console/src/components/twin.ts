/**
 * The initial-twin rules of the server, from the server's own walk (packages/model/src/twin-rules.ts,
 * docs/service-rest.md §3): that file depends on nothing, so the console bundles it as it is and
 * refuses in the page exactly what the server would.
 */
import { TWIN_LIMITS, twinSectionProblem as problemOf } from '../../../model/src/twin-rules';

export { TWIN_LIMITS };

/** The problem with one initial-twin section, in the server's words, or undefined when it is acceptable. */
export function twinSectionProblem(section: Record<string, unknown>, field: string, maxBytes: number): string | undefined {
  const problem = problemOf(section, { field, maxBytes });
  return problem ? `${field}: ${problem.detail}` : undefined;
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
