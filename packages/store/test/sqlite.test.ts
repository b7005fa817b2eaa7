import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Errors } from '@opendps/model';
import { SqliteStore } from '../src';
import { describeStoreConformance } from './conformance';

const dir = mkdtempSync(path.join(tmpdir(), 'opendps-sqlite-'));
/** Expiry is compared with this clock, moved by the tests instead of waiting. */
let now = Date.now();
const clock = { now: () => now, advance: (ms: number) => void (now += ms) };

describeStoreConformance(
  'sqlite',
  async () => new SqliteStore(path.join(dir, 'opendps.db'), { now: clock.now }),
  () => rmSync(dir, { recursive: true, force: true }),
  clock,
);

describe('SqliteStore', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'opendps-sqlite-'));
  let file: string;
  beforeEach(() => {
    file = path.join(mkdtempSync(path.join(root, 'case-')), 'opendps.db');
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  test('opens in WAL mode with a schema version, and keeps data across reopening', async () => {
    const store = new SqliteStore(file);
    const written = await store.collection('s', 'enrollments').put('Dev-1', { a: 1 }, { indexes: { k: ['v'] } });
    await store.close();

    const raw = new Database(file, { readonly: true });
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(raw.prepare('SELECT version FROM schema_version ORDER BY version').all()).toEqual([{ version: 1 }, { version: 2 }]);
    raw.close();

    const again = new SqliteStore(file);
    expect(await again.collection('s', 'enrollments').get('dev-1')).toEqual(written);
    expect(await again.collection('s', 'enrollments').findByIndex('k', 'V')).toEqual([written]);
    await again.close();
  });

  test('a file of schema 1 is brought to 2 when opened: its documents stay, the group version starts', async () => {
    const store = new SqliteStore(file);
    const written = await store.collection('s', 'enrollmentGroups').put('g-1', { a: 1 });
    await store.close();
    const raw = new Database(file);
    raw.exec('DROP TABLE collection_versions; DELETE FROM schema_version WHERE version = 2;');
    raw.close();

    const again = new SqliteStore(file);
    const groups = again.collection('s', 'enrollmentGroups');
    expect(await groups.get('g-1')).toEqual(written);
    expect(await groups.version()).toBeUndefined();
    await groups.put('g-2', { a: 2 });
    expect(await groups.version()).toEqual(expect.any(String));
    await again.close();
    const check = new Database(file, { readonly: true });
    expect(check.prepare('SELECT version FROM schema_version ORDER BY version').all()).toEqual([{ version: 1 }, { version: 2 }]);
    check.close();
  });

  test('refuses a database written by a newer schema', async () => {
    await new SqliteStore(file).close();
    const raw = new Database(file);
    raw.prepare('INSERT INTO schema_version (version) VALUES (99)').run();
    raw.close();
    expect(() => new SqliteStore(file)).toThrow(/newer OpenDPS \(schema 99/);
  });

  test('reads and pages use the indexes, never a table scan', () => {
    const raw = new Database(file);
    new SqliteStore(file).close();
    const plans = [
      `SELECT id FROM documents WHERE scope = 's' AND collection = 'c' AND id = 'x'`,
      `SELECT id FROM documents d WHERE scope = 's' AND collection = 'c' AND id > 'x' ORDER BY id LIMIT 10`,
      `SELECT d.id FROM index_entries e JOIN documents d ON d.scope = e.scope AND d.collection = e.collection AND d.id = e.id
         WHERE e.scope = 's' AND e.collection = 'c' AND e.index_name = 'i' AND e.key = 'k' AND e.id > 'x' ORDER BY e.id LIMIT 10`,
      `DELETE FROM index_entries WHERE scope = 's' AND collection = 'c' AND id = 'x'`,
    ].map((sql) => (raw.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as Array<{ detail: string }>).map((r) => r.detail));
    raw.close();
    for (const plan of plans) {
      for (const step of plan) expect(step).not.toMatch(/^SCAN|USE TEMP B-TREE/);
    }
  });

  test('the sweep deletes expired documents, their index entries and counters', async () => {
    const store = new SqliteStore(file, { now: clock.now });
    const ops = store.collection('s', 'operations');
    await ops.put('op-1', { a: 1 }, { ttlSeconds: 0.05, indexes: { k: ['v'] } });
    await ops.put('op-2', { a: 2 }, { indexes: { k: ['v'] } });
    await store.increment('c', 0.05);
    store.sweep();
    const early = new Database(file, { readonly: true });
    expect(early.prepare('SELECT count(*) AS n FROM documents').get()).toEqual({ n: 2 });
    early.close();
    // A counter window is at least 1 s.
    clock.advance(1000);
    store.sweep();
    await store.close();
    const raw = new Database(file, { readonly: true });
    expect(raw.prepare('SELECT id FROM documents').all()).toEqual([{ id: 'op-2' }]);
    expect(raw.prepare('SELECT id FROM index_entries').all()).toEqual([{ id: 'op-2' }]);
    expect(raw.prepare('SELECT count(*) AS n FROM counters').get()).toEqual({ n: 0 });
    raw.close();
  });

  test('a closed store rejects with a coded error', async () => {
    const store = new SqliteStore(file);
    await store.close();
    await expect(store.collection('s', 'c').get('x')).rejects.toMatchObject({ status: 500, errorCode: 500001 });
  });

  test('writes issued together are committed together, in order, each standing or falling alone', async () => {
    const store = new SqliteStore(file);
    const c = store.collection<{ n: number }>('s', 'c');
    await c.put('kept', { n: 0 });
    const missing = () => Errors.invalidAttestation('parent missing');
    // All issued in one turn of the event loop: one group commit.
    const results = await Promise.allSettled([
      c.put('a', { n: 1 }, { ifNoneMatch: '*' }),
      c.put('a', { n: 2 }, { ifNoneMatch: '*' }),
      c.put('b', { n: 3 }, { indexes: { k: ['x'] }, requires: [{ collection: 'parents', id: 'p', error: missing }] }),
      c.delete('kept', { ifMatch: '"not-its-etag"' }),
      store.increment('counter', 5),
      store.increment('counter', 5),
      c.put('a', { n: 4 }),
    ]);
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ status: 409 });
    expect((results[2] as PromiseRejectedResult).reason).toMatchObject({ status: 400, errorCode: 400010 });
    expect((results[3] as PromiseRejectedResult).reason).toMatchObject({ status: 412 });
    expect([(results[4] as PromiseFulfilledResult<number>).value, (results[5] as PromiseFulfilledResult<number>).value]).toEqual([1, 2]);
    // The refused write left nothing behind (its index entries neither), the later write to `a` won.
    expect(await c.get('b')).toBeUndefined();
    expect(await c.findByIndex('k', 'x')).toEqual([]);
    expect((await c.get('a'))?.value).toEqual({ n: 4 });
    expect((await c.get('kept'))?.value).toEqual({ n: 0 });
    await store.close();
  });

  test('a write has been committed when its promise resolves; close commits what was issued', async () => {
    const store = new SqliteStore(file);
    const raw = new Database(file, { readonly: true });
    const rows = () => (raw.prepare("SELECT count(*) AS n FROM documents WHERE collection = 'c'").get() as { n: number }).n;
    const written = store.collection('s', 'c').put('one', { n: 1 });
    expect(rows()).toBe(0);
    await written;
    expect(rows()).toBe(1);
    const last = store.collection('s', 'c').put('two', { n: 2 });
    await store.close();
    await expect(last).resolves.toMatchObject({ id: 'two' });
    expect(rows()).toBe(2);
    raw.close();
  });
});
