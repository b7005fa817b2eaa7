import { startRedis, type RedisServer } from '../../../test/support/redis-server';
import { RedisStore } from '../src';
import { describeStoreConformance } from './conformance';

let server: RedisServer | undefined;

describeStoreConformance(
  'redis',
  async () => {
    server = await startRedis();
    return RedisStore.connect(server.url);
  },
  () => server?.stop(),
);

describe('RedisStore connection', () => {
  test('connect fails fast, with the address, when Redis is unreachable', async () => {
    const down = await startRedis();
    await down.stop();
    const started = Date.now();
    await expect(RedisStore.connect(`redis://user:secret@127.0.0.1:${down.port}`)).rejects.toThrow(
      new RegExp(`Redis at redis://user:\\*\\*\\*@127\\.0\\.0\\.1:${down.port}/? is unreachable: .*ECONNREFUSED`),
    );
    expect(Date.now() - started).toBeLessThan(3000);
  });

  test('a Redis restart: the store reconnects, keeps working, and data on the AOF is still there', async () => {
    const redis = await startRedis({ appendonly: true });
    const errors: Error[] = [];
    const store = await RedisStore.connect(redis.url, { onError: (e) => errors.push(e) });
    try {
      const docs = store.collection<{ n: number }>('restart', 'enrollments');
      const before = await docs.put('dev-1', { n: 1 }, { indexes: { group: ['g'] } });

      await redis.restart();
      // The scripts are gone from the restarted server: this put needs the NOSCRIPT fallback.
      const after = await docs.put('dev-1', { n: 2 }, { ifMatch: before.etag, indexes: { group: ['g'] } });
      expect(after.value).toEqual({ n: 2 });
      expect(await docs.get('dev-1')).toEqual(after);
      expect((await docs.findByIndex('group', 'g')).map((d) => d.id)).toEqual(['dev-1']);
      expect(await store.increment('restart-counter', 60)).toBe(1);

      // A crash (SIGKILL) and restart: a command sent while Redis is down waits for it.
      redis.kill();
      const pending = docs.get('dev-1');
      await redis.restart();
      expect((await pending)?.value).toEqual({ n: 2 });
    } finally {
      await store.close();
      await redis.stop();
    }
  });
});
