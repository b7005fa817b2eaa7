import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startRedis, type RedisServer } from '../../../test/support/redis-server';
import { RedisStore, SqliteStore, type Store } from '../src';

const fixtures = path.join(__dirname, 'fixtures');

interface Ack {
  id: string;
  etag: string;
}

/**
 * Runs the writer fixture until it has acknowledged at least `atLeast` puts, kills it with SIGKILL
 * while it is still writing, and returns every put it acknowledged (complete lines only).
 */
async function writeThenKill(args: string[], atLeast: number): Promise<Ack[]> {
  const child = spawn(process.execPath, ['-r', path.join(fixtures, 'register-ts.js'), path.join(fixtures, 'writer.ts'), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(signal ?? code)),
  );
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`writer too slow: ${stdout.length} bytes, ${stderr}`)), 20_000);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if ((stdout.match(/^ack /gm)?.length ?? 0) >= atLeast) {
        clearTimeout(timer);
        child.kill('SIGKILL');
        resolve();
      }
    });
    void exited.then((how) => reject(new Error(`writer exited (${String(how)}) before the kill: ${stderr}`)));
  });
  expect(await exited).toBe('SIGKILL');
  const acks = stdout
    .split('\n')
    .slice(0, -1) // the last element is a partial line (or empty)
    .filter((line) => line.startsWith('ack '))
    .map((line) => {
      const [, id, etag] = line.split(' ');
      return { id: id as string, etag: etag as string };
    });
  expect(acks.length).toBeGreaterThanOrEqual(atLeast);
  return acks;
}

async function expectAllPresent(store: Store, acks: Ack[]): Promise<void> {
  const docs = store.collection<{ n: number }>('durability', 'enrollments');
  const missing: string[] = [];
  for (const ack of acks) {
    const found = await docs.get(ack.id);
    if (!found || found.etag !== ack.etag || `dev-${found.value.n}` !== ack.id) missing.push(ack.id);
  }
  expect(missing).toEqual([]);
  expect(await docs.count()).toBeGreaterThanOrEqual(acks.length);
  // The index entries of acknowledged writes survived with them.
  const g0 = (await docs.findByIndex('group', 'g0')).map((d) => d.id);
  expect(g0).toEqual(expect.arrayContaining(acks.filter((a) => Number(a.id.slice(4)) % 3 === 0).map((a) => a.id)));
}

describe('durability: a writer killed with SIGKILL mid-stream loses no acknowledged put', () => {
  test('sqlite (WAL, synchronous = NORMAL)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'opendps-durability-'));
    const file = path.join(dir, 'opendps.db');
    try {
      const acks = await writeThenKill(['sqlite', file], 300);
      const store = new SqliteStore(file);
      try {
        await expectAllPresent(store, acks);
      } finally {
        await store.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('redis', async () => {
    let redis: RedisServer | undefined;
    try {
      redis = await startRedis();
      const acks = await writeThenKill(['redis', redis.url], 300);
      const store = await RedisStore.connect(redis.url);
      try {
        await expectAllPresent(store, acks);
      } finally {
        await store.close();
      }
    } finally {
      await redis?.stop();
    }
  });
});
