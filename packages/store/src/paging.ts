import { Errors } from '@opendps/model';
import type { ListOptions } from './store';

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

/** The page size asked for, clamped to 1..1000 (a missing or unusable size means the default). */
export function pageSizeOf(options: ListOptions | undefined): number {
  const size = options?.pageSize;
  if (size === undefined || typeof size !== 'number' || !Number.isFinite(size)) return DEFAULT_PAGE_SIZE;
  return Math.min(MAX_PAGE_SIZE, Math.max(1, Math.floor(size)));
}

/** Continuation tokens are opaque to callers: base64url of `{"after": <last id of the page>}`. */
export function encodeContinuation(lastId: string): string {
  return Buffer.from(JSON.stringify({ after: lastId }), 'utf8').toString('base64url');
}

/** The id a page starts after; a token we did not issue is a bad `x-ms-continuation` header. */
export function decodeContinuation(token: string | undefined): string | undefined {
  if (token === undefined) return undefined;
  const bad = () => Errors.invalidHeader('The x-ms-continuation header is not a continuation token this service issued.');
  if (typeof token !== 'string' || !/^[A-Za-z0-9_-]+$/.test(token)) throw bad();
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  const after = (decoded as { after?: unknown } | null)?.after;
  if (typeof decoded !== 'object' || typeof after !== 'string' || after.length === 0) throw bad();
  return after;
}
