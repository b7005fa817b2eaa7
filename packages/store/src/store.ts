/**
 * The state store: one interface, two backends (embedded SQLite, Redis). Everything OpenDPS keeps
 * lives in named collections of JSON documents, each scoped (an instance's ID scope, a hub's name, or
 * `global`). Every write returns a fresh etag; conditional writes are compare-and-set.
 *
 * Ids and index keys are case-insensitive (DPS registration ids are): the store folds them to lower
 * case, and `StoredDocument.id` is the folded id. The document keeps whatever casing the caller wrote.
 */

import type { DpsError } from '@opendps/model';

export interface StoredDocument<T> {
  id: string;
  /** A quoted GUID-like string, as DPS formats them: `"9b2c…"` (quotes included). */
  etag: string;
  value: T;
}

export interface PutOptions {
  /** `*`: the document must exist. An etag: it must be the current one (quotes optional). Else 412. */
  ifMatch?: string;
  /** `*`: the document must not exist, else 409. */
  ifNoneMatch?: '*';
  /** The document disappears after this many seconds (in-flight operations, TPM challenges). */
  ttlSeconds?: number;
  /**
   * Secondary index entries, index name -> the keys this document is found under. A put replaces
   * all of the document's previous entries (omit to keep none).
   */
  indexes?: Record<string, string[]>;
  /**
   * Documents of other collections in the same scope that must exist when the put applies,
   * checked in the same atomic step; the first one missing throws its `error`.
   */
  requires?: RequiredDocument[];
  /** When the put creates a document: the collection may hold at most `count`, else `error`. */
  limit?: { count: number; error: () => DpsError };
  /**
   * The etag to store the document with (default a fresh `newEtag()`): a caller that names this
   * version in other writes issues them alongside it instead of after it (docs/scale.md).
   */
  etag?: string;
}

export interface RequiredDocument {
  collection: string;
  id: string;
  error: () => DpsError;
}

export interface DeleteOptions {
  /** As in PutOptions; a mismatch is 412. */
  ifMatch?: string;
  /**
   * Refuse (throw `error`) while any document of `collection` in the same scope is found under
   * `index`/`key`, checked in the same atomic step as the delete.
   */
  unlessIndexed?: { collection: string; index: string; key: string; error: () => DpsError };
}

export interface ListOptions {
  /** At most this many items (default 100, capped at 1000). */
  pageSize?: number;
  /** The token a previous page returned. */
  continuation?: string;
  /** Only documents under this index key. */
  where?: { index: string; key: string };
}

export interface Page<T> {
  /** Ordered by id. */
  items: StoredDocument<T>[];
  /** Present only while more items remain. */
  continuation?: string;
}

export interface Collection<T> {
  get(id: string): Promise<StoredDocument<T> | undefined>;
  /** Throws `Errors.preconditionFailed` (412) or `Errors.conflict` (409) when a condition fails. */
  put(id: string, value: T, options?: PutOptions): Promise<StoredDocument<T>>;
  /** False when there was nothing to delete; throws 412 on an etag mismatch. */
  delete(id: string, options?: DeleteOptions): Promise<boolean>;
  list(options?: ListOptions): Promise<Page<T>>;
  /** Every document under an index key (thumbprints, group ids); cost independent of collection size. */
  findByIndex(index: string, key: string): Promise<StoredDocument<T>[]>;
  count(): Promise<number>;
  /**
   * For a collection of `VERSIONED_COLLECTIONS`: a token that every put and delete replaces in the
   * same atomic step as the write, so a node that caches the collection knows, with one small read,
   * whether its copy is current. Undefined before the first write. Documents that expire by TTL do not
   * change it. Throws for any other collection (nothing maintains one there).
   */
  version(): Promise<string | undefined>;
}

/**
 * The collections whose writes maintain a version (`Collection.version`). Kept to those that nodes
 * cache, so the writes of the hot collections (registrations, operations) pay nothing for it.
 * The symmetric-key groups are tried against each new device's token (docs/scale.md).
 */
export const VERSIONED_COLLECTIONS: ReadonlySet<string> = new Set(['enrollmentGroups']);

/**
 * `requires` and `unlessIndexed` may name only a collection that shares the written one's atomic
 * unit; on Redis that is a hash slot, so such collections are placed together (see redis.ts).
 */
export interface Store {
  readonly kind: 'sqlite' | 'redis';
  collection<T>(scope: string, name: string): Collection<T>;
  /**
   * Adds one to a counter that lives `windowSeconds` from its first increment, and returns the new
   * value (fixed-window throttling shared by every node).
   */
  increment(key: string, windowSeconds: number): Promise<number>;
  close(): Promise<void>;
}
