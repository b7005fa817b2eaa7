import type { IncomingHttpHeaders } from 'node:http';

/** A REST request once routed and its body parsed; handlers see nothing of the socket. */
export interface RestRequest {
  headers: IncomingHttpHeaders & { 'x-ms-continuation'?: string; 'x-ms-max-item-count'?: string };
  query: URLSearchParams;
  body: unknown;
  ifMatch: string | undefined;
  ifNoneMatch: string | undefined;
}

export interface RestResult {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}
