import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startRedis } from '../../../test/support/redis-server';
import { openStore } from '../src';

describe('openStore', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'opendps-open-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  test('without a Redis URL: SQLite at <dataDir>/opendps.db, creating the directory', async () => {
    const dataDir = path.join(root, 'nested', 'data');
    const store = await openStore({ dataDir });
    expect(store.kind).toBe('sqlite');
    await store.collection('s', 'c').put('a', { v: 1 });
    await store.close();
    expect(existsSync(path.join(dataDir, 'opendps.db'))).toBe(true);
  });

  test('with a Redis URL: Redis, and nothing written to the data directory', async () => {
    const redis = await startRedis();
    const dataDir = path.join(root, 'unused');
    try {
      const store = await openStore({ dataDir, redisUrl: redis.url });
      expect(store.kind).toBe('redis');
      const written = await store.collection('s', 'c').put('a', { v: 1 });
      expect(await store.collection('s', 'c').get('A')).toEqual(written);
      await store.close();
      expect(existsSync(dataDir)).toBe(false);
    } finally {
      await redis.stop();
    }
  });

  test('an unreachable Redis fails fast with a clear error', async () => {
    const redis = await startRedis();
    await redis.stop();
    await expect(openStore({ dataDir: root, redisUrl: redis.url })).rejects.toThrow(/Redis at .* is unreachable/);
  });
});
