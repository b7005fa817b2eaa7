import { Errors } from '@opendps/model';
import type { PageOptions, RepositoryPage } from '@opendps/store';
import { header, type OperationContext } from './context';
import type { OperationResult } from './respond';


export type ItemType = 'Enrollment' | 'EnrollmentGroup' | 'DeviceRegistration';

/**
 * The query grammar is not published (docs/service-rest.md §5): `*` and `SELECT * FROM <collection>` mean
 * "all", anything else is refused. Node samples send `*`; C# samples send the SELECT form, also to
 * the registrations-of-a-group query, so every collection name is accepted on every query route.
 */
const ALL = /^\s*(?:\*|select\s+\*\s+from\s+(?:enrollments|enrollmentgroups|registrations|deviceregistrations)\s*;?)\s*$/i;

export function assertQueryAll(body: unknown): void {
  if (body === undefined) return;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw Errors.invalidField('The body must be a QuerySpecification {"query": "..."}.');
  }
  const query = (body as { query?: unknown }).query;
  if (typeof query !== 'string') throw Errors.invalidField("'query' must be a string.");
  if (!ALL.test(query)) throw Errors.invalidQuery("Only '*' and 'SELECT * FROM <collection>' are supported.");
}

/** `x-ms-max-item-count` (sent only when the caller chose a page size) and `x-ms-continuation`. */
export function pageOptions(context: OperationContext): PageOptions {
  const count = header(context, 'x-ms-max-item-count');
  const continuation = header(context, 'x-ms-continuation');
  let pageSize: number | undefined;
  if (count !== undefined) {
    if (!/^\d{1,9}$/.test(count.trim()) || Number(count) < 1) {
      throw Errors.invalidHeader('x-ms-max-item-count must be a positive integer.');
    }
    pageSize = Number(count);
  }
  return { ...(pageSize !== undefined ? { pageSize } : {}), ...(continuation !== undefined ? { continuation } : {}) };
}

/**
 * A page as DPS answers it. `x-ms-item-type` is always present (C# Enum.Parse throws without it);
 * `x-ms-continuation` only while more pages remain: Node loops forever on an empty one.
 */
export function queryResult<T>(page: RepositoryPage<T>, itemType: ItemType, options: PageOptions, view: (item: T) => unknown): OperationResult {
  return {
    status: 200,
    body: page.items.map(view),
    headers: {
      'x-ms-item-type': itemType,
      ...(options.pageSize !== undefined ? { 'x-ms-max-item-count': String(options.pageSize) } : {}),
      ...(page.continuation ? { 'x-ms-continuation': page.continuation } : {}),
    },
  };
}
