import type { IncomingHttpHeaders } from 'node:http';
import type { ProvisioningInstance } from '@opendps/model';
import type { Store } from '@opendps/store';
import type { OperationResult } from './respond';

/** What every operation handler gets: the caller's instance, the path id and the parsed body. */
export interface OperationContext {
  store: Store;
  instance: ProvisioningInstance;
  id?: string;
  body: unknown;
  headers: IncomingHttpHeaders;
}

export type OperationHandler = (context: OperationContext) => Promise<OperationResult>;

/** The path id; routing guarantees it for every operation that uses it. */
export function pathId(context: OperationContext): string {
  if (context.id === undefined) throw new Error('route without an id');
  return context.id;
}

/** A single-valued header (`If-Match`, `x-ms-continuation`), or undefined. */
export function header(context: OperationContext, name: string): string | undefined {
  const value = context.headers[name.toLowerCase()];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined || first === '' ? undefined : first;
}
