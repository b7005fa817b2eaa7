import { Errors } from './errors';
import { twinSectionProblem, type TwinSectionShape } from './twin-rules';
import type { TwinCollection } from './types';

export { TWIN_LIMITS } from './twin-rules';

/** How one twin section is held to the limits (twin-rules.ts), and what a refusal is. */
export interface TwinSectionRules extends Omit<TwinSectionShape, 'byteLength'> {
  /** The error for an invalid section (default: 400017 invalid initial twin, naming the field). */
  invalid?: (detail: string) => Error;
  /** The error for a section past `maxBytes` (default: `invalid`). */
  tooLarge?: (detail: string) => Error;
}

/**
 * Throws the coded error for the first problem of one twin section. Used by enrollments (initial
 * twins) and by the built-in hub (twin writes); the console runs the same walk in the page.
 */
export function checkTwinSection(section: TwinCollection, rules: TwinSectionRules): void {
  // The common empty section costs no rules object (twinSectionProblem passes it as well).
  if (Object.keys(section).length === 0) return;
  const problem = twinSectionProblem(section, { ...rules, byteLength: (text) => Buffer.byteLength(text) });
  if (!problem) return;
  const invalid = rules.invalid ?? ((detail: string) => Errors.invalidInitialTwin(`${rules.field}: ${detail}`));
  throw (problem.kind === 'tooLarge' ? (rules.tooLarge ?? invalid) : invalid)(problem.detail);
}

/** An initial twin's section, as an enrollment write checks it (docs/service-rest.md §3). */
export function assertTwinSection(section: TwinCollection, field: string, maxBytes: number): void {
  checkTwinSection(section, { field, maxBytes });
}
