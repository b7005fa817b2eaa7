import { createReadStream, existsSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import type { Route } from '../https';

/** The console's prefix on the HTTPS listener (docs/console.md). */
export const CONSOLE_PREFIX = '/console';

/**
 * The console runs its own scripts and styles only, talks only to this origin (fetch and the device
 * WebSockets), and may not be framed (docs/console.md "Security").
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

export interface ConsoleRouteOptions {
  /** The built console (`@opendps/console`'s dist): index.html, assets/ and a .gz beside each. */
  distDir: string;
}

/**
 * Serves the console: `/console/` is index.html (its pages are hash routes), `/console/assets/…`
 * the hashed bundles, cached for good. Files are sent precompressed when the browser takes gzip.
 */
export function consoleRoute(options: ConsoleRouteOptions): Route {
  const root = normalize(options.distDir);
  return {
    matches: (pathname) => pathname === CONSOLE_PREFIX || pathname.startsWith(`${CONSOLE_PREFIX}/`),
    handle: async (req, res) => {
      const pathname = new URL(req.url ?? '/', 'https://console.invalid').pathname;
      if (req.method !== 'GET' && req.method !== 'HEAD') return plain(res, 405, 'The console answers GET and HEAD.', { allow: 'GET, HEAD' });
      if (pathname === CONSOLE_PREFIX) return plain(res, 301, 'Moved to /console/.', { location: `${CONSOLE_PREFIX}/` });
      const relative = pathname.slice(CONSOLE_PREFIX.length + 1);
      const asset = relative.startsWith('assets/');
      const file = asset ? resolveInside(root, relative) : join(root, 'index.html');
      if (!file || !existsSync(file) || !statSync(file).isFile()) {
        if (!existsSync(join(root, 'index.html'))) return plain(res, 503, 'The console is not built: run `pnpm build`.');
        return plain(res, 404, 'No such console file.');
      }
      send(req, res, file, asset ? 'public, max-age=31536000, immutable' : 'no-cache');
    },
  };
}

/** A path inside `root`, or undefined when the request climbs out of it. */
function resolveInside(root: string, relative: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(relative);
  } catch {
    return undefined;
  }
  const file = normalize(join(root, decoded));
  return file.startsWith(root + sep) && !decoded.includes('\0') ? file : undefined;
}

function send(req: IncomingMessage, res: ServerResponse, file: string, cacheControl: string): void {
  const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? '')) && existsSync(`${file}.gz`);
  const path = gzip ? `${file}.gz` : file;
  res.writeHead(200, {
    ...securityHeaders(),
    'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
    'content-length': statSync(path).size,
    'cache-control': cacheControl,
    vary: 'accept-encoding',
    ...(gzip ? { 'content-encoding': 'gzip' } : {}),
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  createReadStream(path)
    .on('error', () => res.destroy())
    .pipe(res);
}

function securityHeaders(): Record<string, string> {
  return {
    'content-security-policy': CONSOLE_CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cross-origin-opener-policy': 'same-origin',
  };
}

function plain(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...securityHeaders(), 'content-type': 'text/plain; charset=utf-8', ...headers });
  res.end(text);
}
