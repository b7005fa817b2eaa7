import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Store } from './store';
import { SqliteStore } from './sqlite';
import { RedisStore } from './redis';

export interface OpenStoreOptions {
  /** The data directory; the embedded store is `<dataDir>/opendps.db` (the directory is created). */
  dataDir: string;
  /** When given, all state lives in this Redis instead; an unreachable Redis fails at once. */
  redisUrl?: string;
  /**
   * The embedded store's clock (default Date.now). Redis compares expiry with its own server
   * clock (TIME in the scripts, PEXPIREAT), which no fake clock moves.
   */
  now?: () => number;
}

/** The store the server runs on: Redis when a URL is given, else the embedded SQLite file. */
export async function openStore(options: OpenStoreOptions): Promise<Store> {
  if (options.redisUrl) return RedisStore.connect(options.redisUrl);
  mkdirSync(options.dataDir, { recursive: true });
  return new SqliteStore(path.join(options.dataDir, 'opendps.db'), options.now ? { now: options.now } : {});
}
