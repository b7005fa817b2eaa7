import {
  Errors,
  isDpsError,
  type BulkEnrollmentOperationResult,
  type BulkMode,
  type EnrollmentGroup,
  type IndividualEnrollment,
} from '@opendps/model';
import type { WriteOptions } from '@opendps/store';
import { enrollmentRules, type OperationContext, type OperationHandler } from './context';
import type { EnrollmentKind } from './enrollment-kinds';
import { writeEnrollment } from './enrollment-writes';

/** The service.json summary caps a bulk operation at 10 items. */
export const MAX_BULK_ITEMS = 10;
const MODES: readonly BulkMode[] = ['create', 'update', 'updateIfMatchETag', 'delete'];

type Enrollment = IndividualEnrollment | EnrollmentGroup;
type BulkError = BulkEnrollmentOperationResult['errors'][number];

/**
 * `POST /enrollments` (and groups) with `{mode, enrollments[]}`. Each item succeeds or fails on its
 * own; a failure is reported per item and the answer is 200 either way. Only a malformed envelope
 * fails the whole request.
 */
export function bulkHandler<T extends Enrollment>(kind: EnrollmentKind<T>): OperationHandler {
  return async (context) => {
    const { mode, items } = envelope(kind, context.body);
    const errors: BulkError[] = [];
    for (const item of items) {
      try {
        await apply(kind, context, mode, item);
      } catch (error) {
        if (!isDpsError(error)) throw error;
        const id = isObject(item) && typeof item[kind.idField] === 'string' ? (item[kind.idField] as string) : '';
        errors.push({ [kind.idField]: id, errorCode: error.errorCode, errorStatus: error.message });
      }
    }
    const result: BulkEnrollmentOperationResult = { isSuccessful: errors.length === 0, errors };
    return { status: 200, body: result };
  };
}

function envelope<T extends Enrollment>(kind: EnrollmentKind<T>, body: unknown): { mode: BulkMode; items: unknown[] } {
  if (!isObject(body)) throw Errors.invalidField(`The body must be {"mode": ..., "${kind.bulkField}": [...]}.`);
  const mode = body.mode;
  if (typeof mode !== 'string' || !MODES.includes(mode as BulkMode)) {
    throw Errors.invalidField(`'mode' must be one of ${MODES.join(', ')}.`);
  }
  const items = body[kind.bulkField];
  if (!Array.isArray(items) || items.length === 0) throw Errors.invalidField(`'${kind.bulkField}' must be a non-empty array.`);
  if (items.length > MAX_BULK_ITEMS) throw Errors.bulkTooLarge(`A bulk operation takes at most ${MAX_BULK_ITEMS} items; got ${items.length}.`);
  return { mode: mode as BulkMode, items };
}

async function apply<T extends Enrollment>(kind: EnrollmentKind<T>, context: OperationContext, mode: BulkMode, item: unknown): Promise<void> {
  if (!isObject(item)) throw Errors.invalidField('Each bulk item must be an object.');
  const id = kind.assertId(item[kind.idField]);
  const etag = typeof item.etag === 'string' && item.etag !== '' ? item.etag : undefined;
  const { store, instance } = context;
  if (mode === 'delete') {
    const deleted = await kind.repository(store, instance.idScope).delete(id, etag ? { ifMatch: etag } : {});
    if (!deleted) throw kind.notFound(id);
    return;
  }
  let conditions: WriteOptions = {};
  if (mode === 'create') conditions = { ifNoneMatch: '*' };
  if (mode === 'updateIfMatchETag') {
    if (!etag) throw Errors.invalidField("Mode 'updateIfMatchETag' needs each item's etag.");
    conditions = { ifMatch: etag };
  }
  await writeEnrollment(kind, store, instance.idScope, item, id, conditions, enrollmentRules(context));
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
