import { Errors } from '@opendps/model';
import type { PutOptions, StoredDocument } from './store';

/** Ids and index keys are case-insensitive (DPS registration ids are): fold them once, here. */
export function foldId(id: unknown): string {
  if (typeof id !== 'string' || id.length === 0) {
    throw Errors.invalidField('A document id must be a non-empty string.');
  }
  return id.toLowerCase();
}

/** The value as stored: JSON text. Anything JSON cannot carry is the caller's bad input. */
export function serialize(value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    text = undefined;
  }
  if (text === undefined) throw Errors.invalidField('The document is not representable as JSON.');
  return text;
}

/**
 * What a put answers: the document as stored, its value parsed from the stored text only when read
 * (most writers never read it back: the registration's trace and operation record are not).
 */
export function storedDocument<T>(id: string, etag: string, text: string): StoredDocument<T> {
  let parsed: { value: T } | undefined;
  return {
    id,
    etag,
    get value(): T {
      parsed ??= { value: JSON.parse(text) as T };
      return parsed.value;
    },
  };
}

/** Time to live in milliseconds, or undefined for a document that lives until deleted. */
export function ttlMillis(options: PutOptions | undefined): number | undefined {
  const ttl = options?.ttlSeconds;
  if (ttl === undefined) return undefined;
  if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl <= 0) {
    throw Errors.invalidField('ttlSeconds must be a positive number.');
  }
  return Math.max(1, Math.round(ttl * 1000));
}

/** The put's index entries as [index, folded key] pairs, without duplicates. */
export function indexEntries(options: PutOptions | undefined): Array<[index: string, key: string]> {
  const entries = new Map<string, [string, string]>();
  for (const [index, keys] of Object.entries(options?.indexes ?? {})) {
    if (index.length === 0) throw Errors.invalidField('An index name must be a non-empty string.');
    if (!Array.isArray(keys)) throw Errors.invalidField(`The keys of index '${index}' must be an array.`);
    for (const key of keys) {
      const folded = foldId(key);
      entries.set(`${index}\u0000${folded}`, [index, folded]);
    }
  }
  return [...entries.values()];
}

export function checkWindow(windowSeconds: number): number {
  if (typeof windowSeconds !== 'number' || !Number.isFinite(windowSeconds) || windowSeconds <= 0) {
    throw Errors.invalidField('A counter window must be a positive number of seconds.');
  }
  return Math.max(1, Math.ceil(windowSeconds));
}

export function checkCounterKey(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0) throw Errors.invalidField('A counter key must be a non-empty string.');
  return key;
}

export function checkName(kind: 'scope' | 'collection', value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) throw Errors.invalidField(`A ${kind} must be a non-empty string.`);
  return value;
}
