import { randomUUID } from 'node:crypto';

/** A fresh etag, quoted as DPS sends them: `"13003fea-…"` (service-api.md §3). */
export function newEtag(): string {
  return `"${randomUUID()}"`;
}

/**
 * The canonical (quoted) form of an etag a caller sent. Clients send it with or without the
 * quotes, and HTTP allows a weak `W/` prefix; none of that changes which version it names.
 */
export function quoteEtag(etag: string): string {
  const bare = etag.trim().replace(/^W\//, '').replace(/^"(.*)"$/s, '$1');
  return `"${bare}"`;
}

/** True when `given` (an If-Match value, `*` included) matches the current etag. */
export function etagMatches(current: string, given: string): boolean {
  return given.trim() === '*' || quoteEtag(current) === quoteEtag(given);
}
