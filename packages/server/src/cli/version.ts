import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The `version` of packages/server/package.json, read beside `src/` or `dist/` (both sit one level below it). */
export function serverVersion(): string {
  const manifest = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version?: unknown };
  return typeof manifest.version === 'string' ? manifest.version : 'unknown';
}
