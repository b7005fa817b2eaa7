import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * Which page origins may call the device REST API from a browser (docs/device-wire.md §5,
 * "Browsers"). `'*'` suits it: devices authenticate with a SAS header they compute themselves, never
 * with cookies, so no credentialed request is allowed and any origin gets only what its own key proves.
 */
export type CorsOrigins = '*' | readonly string[];

/** What a preflight may ask for: the SDKs' methods and the headers a page sets itself. */
const ALLOW_METHODS = 'GET, PUT, POST, OPTIONS';
const ALLOW_HEADERS = 'Authorization, Content-Type, Accept, User-Agent, x-ms-client-request-id';
/** A page reads these from a cross-origin answer only when they are exposed (poll timing, error codes). */
const EXPOSE_HEADERS = 'retry-after, x-ms-error-code, x-ms-request-id';
/** Browsers cap this themselves (Chromium at 2 h); a day is what they would take. */
const MAX_AGE_SECONDS = '86400';

/**
 * Sets the CORS headers of one answer (res.setHeader, so the route's own headers still go out) and
 * answers a preflight with 204. Returns true when the request was a preflight and is answered.
 * A request without Origin (every SDK, every non-browser client) is left alone; an origin not
 * allowed gets no CORS headers, so the browser hides the answer from the page.
 */
export function applyCors(req: IncomingMessage, res: ServerResponse, origins: CorsOrigins): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  const allowed = origins === '*' || origins.some((entry) => entry === '*' || entry.toLowerCase() === origin.toLowerCase());
  const preflight = req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined;
  if (origins !== '*') res.setHeader('vary', 'Origin');
  if (allowed) {
    res.setHeader('access-control-allow-origin', origins === '*' ? '*' : origin);
    res.setHeader('access-control-expose-headers', EXPOSE_HEADERS);
  }
  if (!preflight) return false;
  req.resume();
  if (allowed) {
    res.setHeader('access-control-allow-methods', ALLOW_METHODS);
    res.setHeader('access-control-allow-headers', ALLOW_HEADERS);
    res.setHeader('access-control-max-age', MAX_AGE_SECONDS);
  }
  res.writeHead(204, { 'content-length': '0' });
  res.end();
  return true;
}
