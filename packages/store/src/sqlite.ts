import Database from 'better-sqlite3';
import { Errors } from '@opendps/model';
import { VERSIONED_COLLECTIONS, type Collection, type DeleteOptions, type ListOptions, type Page, type PutOptions, type Store, type StoredDocument } from './store';
import { checkCounterKey, checkName, checkWindow, foldId, indexEntries, serialize, storedDocument, ttlMillis } from './documents';
import { etagMatches, newEtag } from './etag';
import { decodeContinuation, encodeContinuation, pageSizeOf } from './paging';

export interface SqliteStoreOptions {
  /** How often expired documents and counters are deleted (they are invisible from expiry on). Default 60 s. */
  sweepIntervalMs?: number;
  /** The clock expiry is compared with, in epoch ms (default Date.now); tests pass a fake one. */
  now?: () => number;
}

const SCHEMA_VERSION = 2;

/** Version 1. Expiry times are epoch milliseconds; NULL means the row lives until deleted. */
const SCHEMA_V1 = `
  CREATE TABLE documents (
    scope TEXT NOT NULL, collection TEXT NOT NULL, id TEXT NOT NULL,
    etag TEXT NOT NULL, value TEXT NOT NULL, expires_at INTEGER,
    PRIMARY KEY (scope, collection, id)
  ) WITHOUT ROWID;
  CREATE INDEX documents_expiry ON documents (expires_at) WHERE expires_at IS NOT NULL;
  CREATE TABLE index_entries (
    scope TEXT NOT NULL, collection TEXT NOT NULL, index_name TEXT NOT NULL, key TEXT NOT NULL, id TEXT NOT NULL,
    PRIMARY KEY (scope, collection, index_name, key, id)
  ) WITHOUT ROWID;
  CREATE INDEX index_entries_by_document ON index_entries (scope, collection, id);
  CREATE TABLE counters (key TEXT NOT NULL PRIMARY KEY, value INTEGER NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID;
  CREATE INDEX counters_expiry ON counters (expires_at);
`;

/**
 * Version 2: the version token of each versioned collection (store.ts VERSIONED_COLLECTIONS). An
 * OpenDPS that knows only version 1 would write groups without replacing it, so it refuses the file.
 */
const SCHEMA_V2 = `
  CREATE TABLE collection_versions (
    scope TEXT NOT NULL, collection TEXT NOT NULL, version TEXT NOT NULL,
    PRIMARY KEY (scope, collection)
  ) WITHOUT ROWID;
`;

/** A write waiting for the next group commit. */
interface QueuedWrite {
  run: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

interface DocumentRow {
  id: string;
  etag: string;
  value: string;
}

/**
 * The embedded backend: one SQLite file in WAL mode with `synchronous = NORMAL`, so a commit is
 * in the WAL (the OS's page cache) before `put` resolves and survives a crash of this process;
 * only an OS crash or power loss can take the last commits. better-sqlite3 is synchronous: every
 * operation runs to completion inside one call, which makes each conditional write atomic.
 *
 * Writes are group-committed (docs/scale.md "Store round trips"): the writes issued in one turn
 * of the event loop run in order, each in a savepoint of its own (its checks and its effects stand
 * or fall together, exactly as alone), inside one transaction committed once, in `setImmediate`.
 * Each write's promise settles after that commit, never before, so what a write promised is as
 * durable as before; a commit costs about what four lone writes cost, and 50 registrations in
 * flight share it.
 */
export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly statements: Statements;
  /** The group commit's own statements, prepared once (db.transaction() builds five wrappers a call). */
  private readonly control: Record<'begin' | 'commit' | 'rollback' | 'savepoint' | 'release' | 'rollbackTo', Database.Statement>;
  private readonly sweepTimer: NodeJS.Timeout;
  private closed = false;
  private queue: QueuedWrite[] = [];
  private readonly flushSoon = (): void => this.flush();
  /** @internal */
  readonly now: () => number;

  constructor(readonly path: string, options: SqliteStoreOptions = {}) {
    this.now = options.now ?? Date.now;
    this.db = new Database(path);
    // Several processes (`--workers`) may open one file: wait for a lock rather than fail, from the
    // first statement on (switching to WAL takes one too).
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    migrate(this.db);
    this.statements = prepare(this.db);
    this.control = {
      // IMMEDIATE takes the write lock up front, where busy_timeout waits for another process's
      // writer; a deferred BEGIN would fail with SQLITE_BUSY when its read lock is upgraded.
      begin: this.db.prepare('BEGIN IMMEDIATE'),
      commit: this.db.prepare('COMMIT'),
      rollback: this.db.prepare('ROLLBACK'),
      savepoint: this.db.prepare('SAVEPOINT write'),
      release: this.db.prepare('RELEASE write'),
      rollbackTo: this.db.prepare('ROLLBACK TO write'),
    };
    this.sweepTimer = setInterval(() => this.sweep(), options.sweepIntervalMs ?? 60_000);
    this.sweepTimer.unref();
  }

  collection<T>(scope: string, name: string): Collection<T> {
    return new SqliteCollection<T>(this, checkName('scope', scope), checkName('collection', name));
  }

  async increment(key: string, windowSeconds: number): Promise<number> {
    const window = checkWindow(windowSeconds);
    const checked = checkCounterKey(key);
    const s = this.open();
    return this.write(() => {
      const now = this.now();
      return (s.increment.get({ key: checked, now, expiresAt: now + window * 1000 }) as { value: number }).value;
    });
  }

  /**
   * @internal Queues a write for the next group commit; resolves with what `run` returned once
   * that commit is done, or rejects with what `run` threw (its savepoint rolled back, the other
   * writes unaffected) or with the commit's failure.
   */
  write<R>(run: () => R): Promise<R> {
    this.open();
    return new Promise<R>((resolve, reject) => {
      if (this.queue.push({ run, resolve: resolve as (value: unknown) => void, reject }) === 1) setImmediate(this.flushSoon);
    });
  }

  /** Commits every queued write in one transaction, then settles their promises. */
  private flush(): void {
    const batch = this.queue;
    if (batch.length === 0) return;
    this.queue = [];
    if (this.closed) {
      for (const write of batch) write.reject(Errors.internal('The state store is closed.'));
      return;
    }
    const c = this.control;
    // Alone, a write needs no savepoint: the transaction is its own.
    const savepoints = batch.length > 1;
    const outcomes: Array<{ ok: boolean; value: unknown }> = [];
    try {
      c.begin.run();
      for (const write of batch) {
        if (savepoints) c.savepoint.run();
        try {
          const value = write.run();
          if (savepoints) c.release.run();
          outcomes.push({ ok: true, value });
        } catch (error) {
          // Undo this write alone (its checks failed, or SQLite refused it half way).
          if (savepoints) {
            c.rollbackTo.run();
            c.release.run();
          }
          outcomes.push({ ok: false, value: error });
        }
      }
      if (!savepoints && !(outcomes[0] as { ok: boolean }).ok) c.rollback.run();
      else c.commit.run();
    } catch (error) {
      // BEGIN or COMMIT failed (a lock held past busy_timeout, a full disk): nothing was written.
      if (this.db.inTransaction) c.rollback.run();
      for (const write of batch) write.reject(error);
      return;
    }
    batch.forEach((write, index) => {
      const outcome = outcomes[index] as { ok: boolean; value: unknown };
      if (outcome.ok) write.resolve(outcome.value);
      else write.reject(outcome.value);
    });
  }

  /** Deletes what has expired; reads already ignore it, this only reclaims the space. */
  sweep(): void {
    if (this.closed) return;
    const s = this.statements;
    this.db
      .transaction((now: number) => {
        s.sweepIndexEntries.run({ now });
        s.sweepDocuments.run({ now });
        s.sweepCounters.run({ now });
      })
      .immediate(this.now());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Writes already issued are committed, not dropped.
    this.flush();
    this.closed = true;
    clearInterval(this.sweepTimer);
    this.db.close();
  }

  /** @internal The prepared statements, once we know the database is still open. */
  open(): Statements {
    if (this.closed) throw Errors.internal('The state store is closed.');
    return this.statements;
  }
}

class SqliteCollection<T> implements Collection<T> {
  private readonly versioned: boolean;

  constructor(
    private readonly store: SqliteStore,
    private readonly scope: string,
    private readonly name: string,
  ) {
    this.versioned = VERSIONED_COLLECTIONS.has(name);
  }

  async get(id: string): Promise<StoredDocument<T> | undefined> {
    const row = this.store.open().get.get(this.scope, this.name, foldId(id), this.store.now()) as DocumentRow | undefined;
    return row && toDocument<T>(row);
  }

  async put(id: string, value: T, options: PutOptions = {}): Promise<StoredDocument<T>> {
    const folded = foldId(id);
    const text = serialize(value);
    const ttl = ttlMillis(options);
    const entries = indexEntries(options);
    const s = this.store.open();
    const etag = options.etag ?? newEtag();
    // Only a conditional put needs to know what is there (most registration writes are not).
    const conditional = options.ifNoneMatch === '*' || options.ifMatch !== undefined || options.limit !== undefined;
    await this.store.write(() => {
      const now = this.store.now();
      const current = conditional ? (s.currentEtag.get(this.scope, this.name, folded, now) as { etag: string } | undefined) : undefined;
      if (options.ifNoneMatch === '*' && current) throw Errors.conflict();
      if (options.ifMatch !== undefined && (!current || !etagMatches(current.etag, options.ifMatch))) {
        throw Errors.preconditionFailed();
      }
      for (const required of options.requires ?? []) {
        if (!s.currentEtag.get(this.scope, required.collection, foldId(required.id), now)) throw required.error();
      }
      if (options.limit && !current && (s.count.get({ ...this.where(), now }) as { n: number }).n >= options.limit.count) {
        throw options.limit.error();
      }
      s.upsert.run(this.scope, this.name, folded, etag, text, ttl === undefined ? null : now + ttl);
      s.deleteIndexEntries.run(this.scope, this.name, folded);
      for (const [index, key] of entries) s.insertIndexEntry.run(this.scope, this.name, index, key, folded);
      if (this.versioned) s.setVersion.run({ ...this.where(), version: etag });
    });
    return storedDocument<T>(folded, etag, text);
  }

  async delete(id: string, options: DeleteOptions = {}): Promise<boolean> {
    const folded = foldId(id);
    const s = this.store.open();
    return this.store.write(() => {
      const current = s.currentEtag.get(this.scope, this.name, folded, this.store.now()) as { etag: string } | undefined;
      if (!current) return false;
      if (options.ifMatch !== undefined && !etagMatches(current.etag, options.ifMatch)) throw Errors.preconditionFailed();
      const guard = options.unlessIndexed;
      if (guard) {
        const where = { scope: this.scope, collection: guard.collection, index: guard.index, key: foldId(guard.key), now: Date.now() };
        if (s.findByIndex.all(where).length > 0) throw guard.error();
      }
      s.deleteDocument.run({ ...this.where(), id: folded });
      s.deleteIndexEntries.run(this.scope, this.name, folded);
      if (this.versioned) s.setVersion.run({ ...this.where(), version: newEtag() });
      return true;
    });
  }

  async list(options: ListOptions = {}): Promise<Page<T>> {
    const size = pageSizeOf(options);
    const after = decodeContinuation(options.continuation) ?? '';
    const s = this.store.open();
    const params = { ...this.where(), after, now: this.store.now(), limit: size + 1 };
    const rows = (
      options.where
        ? s.listByIndex.all({ ...params, index: options.where.index, key: foldId(options.where.key) })
        : s.list.all(params)
    ) as DocumentRow[];
    const items = rows.slice(0, size).map((row) => toDocument<T>(row));
    const last = items[items.length - 1];
    return rows.length > size && last ? { items, continuation: encodeContinuation(last.id) } : { items };
  }

  async findByIndex(index: string, key: string): Promise<StoredDocument<T>[]> {
    const rows = this.store
      .open()
      .findByIndex.all({ ...this.where(), index, key: foldId(key), now: this.store.now() }) as DocumentRow[];
    return rows.map((row) => toDocument<T>(row));
  }

  async count(): Promise<number> {
    const row = this.store.open().count.get({ ...this.where(), now: this.store.now() }) as { n: number };
    return row.n;
  }

  async version(): Promise<string | undefined> {
    if (!this.versioned) throw Errors.internal(`The collection '${this.name}' keeps no version.`);
    const row = this.store.open().getVersion.get(this.where()) as { version: string } | undefined;
    return row?.version;
  }

  private where() {
    return { scope: this.scope, collection: this.name };
  }
}

function toDocument<T>(row: DocumentRow): StoredDocument<T> {
  return { id: row.id, etag: row.etag, value: JSON.parse(row.value) as T };
}

function migrate(db: Database.Database): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
  db.transaction(() => {
    const row = db.prepare('SELECT max(version) AS version FROM schema_version').get() as { version: number | null };
    const version = row.version ?? 0;
    if (version > SCHEMA_VERSION) {
      throw new Error(`The state store was written by a newer OpenDPS (schema ${version}, this one knows ${SCHEMA_VERSION}).`);
    }
    if (version < 1) {
      db.exec(SCHEMA_V1);
      db.prepare('INSERT INTO schema_version (version) VALUES (1)').run();
    }
    if (version < 2) {
      db.exec(SCHEMA_V2);
      db.prepare('INSERT INTO schema_version (version) VALUES (2)').run();
    }
  }).immediate();
}

const LIVE = '(d.expires_at IS NULL OR d.expires_at > @now)';

/**
 * The statements of every registration take positional parameters, in the order of their comments:
 * better-sqlite3 binds those about a quarter faster than a named-parameter object (which is also
 * one allocation more per call). The others name theirs.
 */
const SQL = {
  /** scope, collection, id, now */
  get: `SELECT d.id, d.etag, d.value FROM documents d
     WHERE d.scope = ? AND d.collection = ? AND d.id = ? AND (d.expires_at IS NULL OR d.expires_at > ?)`,
  /** scope, collection, id, now */
  currentEtag: 'SELECT d.etag FROM documents d WHERE d.scope = ? AND d.collection = ? AND d.id = ? AND (d.expires_at IS NULL OR d.expires_at > ?)',
  /** scope, collection, id, etag, value, expires_at */
  upsert: `INSERT INTO documents (scope, collection, id, etag, value, expires_at) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (scope, collection, id) DO UPDATE
     SET etag = excluded.etag, value = excluded.value, expires_at = excluded.expires_at`,
  deleteDocument: 'DELETE FROM documents WHERE scope = @scope AND collection = @collection AND id = @id',
  /** scope, collection, id */
  deleteIndexEntries: 'DELETE FROM index_entries WHERE scope = ? AND collection = ? AND id = ?',
  /** scope, collection, index_name, key, id */
  insertIndexEntry: 'INSERT OR IGNORE INTO index_entries (scope, collection, index_name, key, id) VALUES (?, ?, ?, ?, ?)',
  list: `SELECT d.id, d.etag, d.value FROM documents d
     WHERE d.scope = @scope AND d.collection = @collection AND d.id > @after AND ${LIVE}
     ORDER BY d.id LIMIT @limit`,
  listByIndex: `SELECT d.id, d.etag, d.value FROM index_entries e
     JOIN documents d ON d.scope = e.scope AND d.collection = e.collection AND d.id = e.id
     WHERE e.scope = @scope AND e.collection = @collection AND e.index_name = @index AND e.key = @key
       AND e.id > @after AND ${LIVE}
     ORDER BY e.id LIMIT @limit`,
  findByIndex: `SELECT d.id, d.etag, d.value FROM index_entries e
     JOIN documents d ON d.scope = e.scope AND d.collection = e.collection AND d.id = e.id
     WHERE e.scope = @scope AND e.collection = @collection AND e.index_name = @index AND e.key = @key AND ${LIVE}
     ORDER BY e.id`,
  setVersion: `INSERT INTO collection_versions (scope, collection, version) VALUES (@scope, @collection, @version)
     ON CONFLICT (scope, collection) DO UPDATE SET version = excluded.version`,
  getVersion: 'SELECT version FROM collection_versions WHERE scope = @scope AND collection = @collection',
  count: `SELECT count(*) AS n FROM documents d WHERE d.scope = @scope AND d.collection = @collection AND ${LIVE}`,
  increment: `INSERT INTO counters (key, value, expires_at) VALUES (@key, 1, @expiresAt)
     ON CONFLICT (key) DO UPDATE SET
       value = CASE WHEN counters.expires_at <= @now THEN 1 ELSE counters.value + 1 END,
       expires_at = CASE WHEN counters.expires_at <= @now THEN excluded.expires_at ELSE counters.expires_at END
     RETURNING value`,
  sweepIndexEntries: `DELETE FROM index_entries WHERE (scope, collection, id) IN
       (SELECT scope, collection, id FROM documents WHERE expires_at IS NOT NULL AND expires_at <= @now)`,
  sweepDocuments: 'DELETE FROM documents WHERE expires_at IS NOT NULL AND expires_at <= @now',
  sweepCounters: 'DELETE FROM counters WHERE expires_at <= @now',
};

type Statements = { [K in keyof typeof SQL]: Database.Statement };

function prepare(db: Database.Database): Statements {
  const entries = Object.entries(SQL).map(([name, sql]) => [name, db.prepare(sql)]);
  return Object.fromEntries(entries) as Statements;
}
