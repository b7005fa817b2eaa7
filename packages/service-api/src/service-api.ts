import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { isDpsError, readJsonBody, silentLogger, toDpsError, type Logger, type ProvisioningInstance, type WebhookUrlPolicy } from '@opendps/model';
import type { Store } from '@opendps/store';
import { authenticate, authorize } from './auth';
import { handlers } from './handlers';
import { sendError, sendResult } from './respond';
import { isServiceApiPath, resolveRoute } from './routes';

/** DPS's maximum message size (docs/service-rest.md §15). */
export const MAX_BODY_BYTES = 96 * 1024;

export interface ServiceApiOptions {
  store: Store;
  /** The instances served, read on every request so instances added at run time are seen at once. */
  instances: () => readonly ProvisioningInstance[];
  logger?: Logger;
  /** Custom allocation webhook URLs enrollments may name; default https:// only, never link-local. */
  webhooks?: WebhookUrlPolicy;
}

export interface ServiceApi {
  /** True for service-API paths only (`/enrollments…`, `/enrollmentGroups…`, `/registrations…`, `/certificates…`, any case). */
  matches(pathname: string): boolean;
  /** Answers one request; never rejects, and every answer is JSON. */
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
}

/** The DPS service REST API (docs/service-rest.md §1-§10), mounted by the server on its HTTPS listener. */
export function createServiceApi(options: ServiceApiOptions): ServiceApi {
  const logger = (options.logger ?? silentLogger).child({ category: 'ServiceOperations' });
  return {
    matches: isServiceApiPath,
    async handle(req, res) {
      const started = performance.now();
      const line: { operation: string; id?: string; instance?: string; status?: number; errorCode?: number } = {
        operation: 'unknown',
      };
      try {
        const pathname = new URL(req.url ?? '/', 'https://service.invalid').pathname;
        const route = resolveRoute(req.method ?? 'GET', pathname);
        line.operation = route.operation;
        if (route.id !== undefined) line.id = route.id;
        const principal = authenticate(headerValue(req.headers.authorization), options.instances(), pathname);
        line.instance = principal.instance.name;
        authorize(principal, route.right);
        const body = await readJsonBody(req, { maxBytes: MAX_BODY_BYTES });
        const result = await handlers[route.operation]({
          store: options.store,
          instance: principal.instance,
          ...(route.id !== undefined ? { id: route.id } : {}),
          body,
          headers: req.headers,
          ...(options.webhooks ? { webhooks: options.webhooks } : {}),
        });
        line.status = result.status;
        sendResult(res, result);
      } catch (thrown) {
        const error = toDpsError(thrown);
        if (!isDpsError(thrown) || error.status >= 500) logger.error({ ...line, trackingId: error.trackingId, err: thrown }, 'service operation failed');
        line.status = error.status;
        line.errorCode = error.errorCode;
        // A refused oversized body may still be arriving: close rather than reuse the connection.
        sendError(res, error, error.status === 413 ? { connection: 'close' } : {});
      }
      logger.info({ ...line, durationMs: Math.round((performance.now() - started) * 10) / 10 }, 'service operation');
    },
  };
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
