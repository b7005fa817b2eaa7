import { randomUUID } from 'node:crypto';

/** A fresh etag, quoted as DPS sends them: `"13003fea-…"` (docs/service-rest.md §3). */
export function newEtag(): string {
  return `"${randomUUID()}"`;
}

/** The canonical (quoted) form of an etag. Clients send it with or without the quotes. */
export function quoteEtag(etag: string): string {
  const bare = etag.trim().replace(/^"(.*)"$/s, '$1');
  return `"${bare}"`;
}

/**
 * The quoted strong etag an If-Match value names, or undefined when it names none. A weak
 * validator (`W/"…"`) never satisfies If-Match: RFC 9110 §13.1.1 compares strongly.
 */
export function strongEtag(given: string): string | undefined {
  const trimmed = given.trim();
  return /^w\//i.test(trimmed) ? undefined : quoteEtag(trimmed);
}

/** True when `given` (an If-Match value, `*` included) matches the current etag by strong comparison. */
export function etagMatches(current: string, given: string): boolean {
  if (given.trim() === '*') return true;
  const strong = strongEtag(given);
  return strong !== undefined && strong === quoteEtag(current);
}
