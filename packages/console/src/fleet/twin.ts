/** Desired properties as the console edits them: the whole object in, a JSON merge patch out. */

export type Json = null | boolean | number | string | Json[] | { [name: string]: Json };

/** The desired section without the service's bookkeeping (`$version`, `$metadata`). */
export function editableDesired(desired: Record<string, unknown> | undefined): Record<string, unknown> {
  const { $version: _version, $metadata: _metadata, ...rest } = desired ?? {};
  return rest;
}

/** The merge patch that turns `before` into `after` (removed names become null, objects recurse), or undefined when equal. */
export function mergePatchBetween(before: Record<string, unknown>, after: Record<string, unknown>): Record<string, unknown> | undefined {
  const patch: Record<string, unknown> = {};
  for (const name of Object.keys(before)) if (!(name in after)) patch[name] = null;
  for (const [name, value] of Object.entries(after)) {
    const old = before[name];
    if (isObject(old) && isObject(value)) {
      const inner = mergePatchBetween(old, value);
      if (inner) patch[name] = inner;
    } else if (JSON.stringify(old) !== JSON.stringify(value)) patch[name] = value;
  }
  return Object.keys(patch).length ? patch : undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parses the editor's text: a JSON object, or a message saying what is wrong. */
export function parseDesired(text: string): { value: Record<string, unknown> } | { error: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return { error: `Not JSON: ${(error as Error).message}` };
  }
  if (!isObject(parsed)) return { error: 'Desired properties are a JSON object, e.g. {"interval": 30}.' };
  const reserved = Object.keys(parsed).find((name) => name.startsWith('$'));
  if (reserved) return { error: `'${reserved}' is reserved: property names cannot start with $.` };
  return { value: parsed };
}
