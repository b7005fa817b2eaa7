import type { Credentials } from './credentials';
import { sasToken } from './sas';

/** The service API version the console speaks (what the Azure service SDK sends). */
export const SERVICE_API_VERSION = '2021-10-01';

/**
 * An answer that is not 2xx, in DPS's words: its HTTP status, DPS `errorCode` and message
 * (docs/service-rest.md "Errors"). The console shows these as they are, code included.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: number | undefined,
    message: string,
  ) {
    super(message);
  }
  /** A write refused because the etag is stale: someone else changed the record meanwhile. */
  get isConflict(): boolean {
    return this.status === 412 || (this.status === 409 && this.errorCode === 409001);
  }
  describe(): string {
    return `${this.message} (${this.errorCode !== undefined ? `error ${this.errorCode}, ` : ''}HTTP ${this.status})`;
  }
}

export interface ApiResponse<T> {
  status: number;
  body: T;
  headers: Headers;
}

export interface RequestOptions {
  body?: unknown;
  headers?: Record<string, string>;
  /** Added to the path as `?…`; `api-version` is added for the service API. */
  query?: Record<string, string>;
}

/**
 * One signed request to this OpenDPS (same origin as the console): the service API (`/enrollments`,
 * `/registrations`, `/certificates`, …) or the admin API (`/admin/…`). A fresh token each time, so
 * a tab left open keeps working.
 */
export async function call<T>(credentials: Credentials, method: string, path: string, options: RequestOptions = {}): Promise<ApiResponse<T>> {
  const query = new URLSearchParams(options.query);
  if (!path.startsWith('/admin')) query.set('api-version', SERVICE_API_VERSION);
  const authorization = await sasToken({ resource: credentials.hostName, key: credentials.key, keyName: credentials.keyName });
  const headers: Record<string, string> = { authorization, accept: 'application/json', ...options.headers };
  let body: string | undefined;
  if (options.body !== undefined) {
    headers['content-type'] = 'application/json; charset=utf-8';
    body = JSON.stringify(options.body);
  }
  const search = query.toString();
  let response: Response;
  try {
    response = await fetch(`${path}${search ? `?${search}` : ''}`, { method, headers, ...(body !== undefined ? { body } : {}) });
  } catch (error) {
    throw new ApiError(0, undefined, `OpenDPS did not answer (${(error as Error).message}).`);
  }
  const text = await response.text();
  let parsed: unknown = undefined;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  if (!response.ok) {
    const details = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as { errorCode?: unknown; message?: unknown; Message?: unknown };
    const code = Number(details.errorCode ?? response.headers.get('x-ms-error-code') ?? NaN);
    const message = String(details.message ?? details.Message ?? (typeof parsed === 'string' && parsed ? parsed : response.statusText || 'Request failed'));
    throw new ApiError(response.status, Number.isFinite(code) ? code : undefined, message);
  }
  return { status: response.status, body: parsed as T, headers: response.headers };
}

/** The message to show for anything thrown by a call. */
export function errorText(error: unknown): string {
  if (error instanceof ApiError) return error.describe();
  return error instanceof Error ? error.message : String(error);
}
