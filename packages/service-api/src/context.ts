import type { IncomingHttpHeaders } from 'node:http';
import type { EnrollmentRules, ProvisioningInstance, WebhookUrlPolicy } from '@opendps/model';
import type { Store } from '@opendps/store';
import type { OperationResult } from './respond';

/** What every operation handler gets: the caller's instance, the path id and the parsed body. */
export interface OperationContext {
  store: Store;
  instance: ProvisioningInstance;
  id?: string;
  body: unknown;
  headers: IncomingHttpHeaders;
  /** Which custom allocation webhook URLs enrollments may name on this server. */
  webhooks?: WebhookUrlPolicy;
}

export type OperationHandler = (context: OperationContext) => Promise<OperationResult>;

/** The path id; routing guarantees it for every operation that uses it. */
export function pathId(context: OperationContext): string {
  if (context.id === undefined) throw new Error('route without an id');
  return context.id;
}

/** What an enrollment written through this context is checked against (its instance, the webhook policy). */
export function enrollmentRules(context: OperationContext): EnrollmentRules {
  return {
    linkedHubs: context.instance.linkedHubs,
    defaultAllocationPolicy: context.instance.allocationPolicy,
    ...(context.webhooks ? { webhooks: context.webhooks } : {}),
  };
}

/** A single-valued header (`If-Match`, `x-ms-continuation`), or undefined. */
export function header(context: OperationContext, name: string): string | undefined {
  const value = context.headers[name.toLowerCase()];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined || first === '' ? undefined : first;
}
