import { Cluster, Redis } from 'ioredis';
import { Errors, isDpsError } from '@opendps/model';
import { VERSIONED_COLLECTIONS, type Collection, type DeleteOptions, type ListOptions, type Page, type PutOptions, type Store, type StoredDocument } from './store';
import { checkCounterKey, checkName, checkWindow, foldId, indexEntries, serialize, storedDocument, ttlMillis } from './documents';
import { newEtag, strongEtag } from './etag';
import { decodeContinuation, encodeContinuation, pageSizeOf } from './paging';
import { COUNT, DELETE, INCREMENT, PUT, RANGE } from './redis-scripts';

export interface RedisStoreOptions {
  /** Called with connection errors (ioredis keeps reconnecting; commands wait in its offline queue). */
  onError?: (error: Error) => void;
  /** Whether close() also closes the client. Default true. */
  ownsClient?: boolean;
}

export interface RedisConnectOptions extends Omit<RedisStoreOptions, 'ownsClient'> {
  /** How long the first connection may take before connect() gives up. Default 5 s. */
  connectTimeoutMs?: number;
}

type Arg = string | number;
interface Scripts {
  opendpsPut(idsKey: string, ...args: Arg[]): Promise<number>;
  opendpsDelete(idsKey: string, ...args: Arg[]): Promise<number>;
  opendpsRange(idsKey: string, ...args: Arg[]): Promise<string[]>;
  opendpsCount(idsKey: string, ...args: Arg[]): Promise<number>;
  opendpsIncrement(counterKey: string, windowSeconds: number): Promise<number>;
}
type Client = (Redis | Cluster) & Scripts;

/**
 * The distributed backend, on a standalone Redis or a Redis Cluster (pass an ioredis `Cluster`).
 * Conditional writes, index maintenance and TTL bookkeeping run as Lua scripts, each one atomic
 * on the collection's hash slot (see redis-scripts.ts for the key layout). Durability is Redis's:
 * a put resolves once Redis has applied it; run Redis with AOF (`appendfsync everysec` or `always`)
 * and `maxmemory-policy noeviction` to keep what it acknowledged.
 *
 * Unlike SqliteStore it takes no `now`: expiry is Redis's own (PEXPIREAT, TIME in the scripts), one
 * clock for every node. A fake clock would have to be sent with every read, including the plain
 * HMGET of `get`, so tests of Redis expiry use short TTLs and wait for the expiry itself.
 */
export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  private readonly client: Client;
  private readonly ownsClient: boolean;
  private closed = false;
  /** Per moved collection and scope, the one-time move of its documents from their old keys. */
  private readonly moves = new Map<string, Promise<void>>();

  constructor(client: Redis | Cluster, options: RedisStoreOptions = {}) {
    const scripts: Array<[keyof Scripts, string]> = [
      ['opendpsPut', PUT],
      ['opendpsDelete', DELETE],
      ['opendpsRange', RANGE],
      ['opendpsCount', COUNT],
      ['opendpsIncrement', INCREMENT],
    ];
    // defineCommand sends EVALSHA and falls back to EVAL after NOSCRIPT (a restarted Redis).
    for (const [name, lua] of scripts) client.defineCommand(name, { numberOfKeys: 1, lua });
    if (options.onError) client.on('error', options.onError);
    else if (client.listenerCount('error') === 0) client.on('error', () => undefined);
    this.client = client as Client;
    this.ownsClient = options.ownsClient ?? true;
  }

  /**
   * Connects to a standalone Redis, failing fast (with the reason) when it is unreachable; once
   * connected, a lost connection is retried for ever with a capped back-off.
   */
  static async connect(url: string, options: RedisConnectOptions = {}): Promise<RedisStore> {
    let connected = false;
    const client = new Redis(url, {
      lazyConnect: true,
      connectTimeout: options.connectTimeoutMs ?? 5000,
      retryStrategy: (times) => (connected ? Math.min(100 * times, 2000) : null),
    });
    let firstError: Error | undefined;
    client.on('error', (error: Error) => {
      firstError ??= error;
      if (connected) options.onError?.(error);
    });
    try {
      await client.connect();
    } catch (error) {
      // After a refused connection ioredis has already ended; disconnecting again would arm a 2 s timer.
      if (client.status !== 'end') client.disconnect();
      const reason = (firstError ?? (error as Error)).message;
      throw new Error(`Redis at ${redactUrl(url)} is unreachable: ${reason}`);
    }
    connected = true;
    // The same URL may name one node of a Redis Cluster (docs/config.md): a plain client there would
    // be answered MOVED for most keys, so the cluster is reached through ioredis's Cluster instead.
    const info = String(await client.info('cluster').catch(() => ''));
    if (!/cluster_enabled:1/.test(info)) return new RedisStore(client, { ownsClient: true });
    const { host, port, username, password, tls } = client.options;
    client.disconnect();
    const cluster = new Cluster([{ host, port }], {
      clusterRetryStrategy: (times) => Math.min(100 * times, 2000),
      redisOptions: { connectTimeout: options.connectTimeoutMs ?? 5000, ...(username ? { username } : {}), ...(password ? { password } : {}), ...(tls ? { tls } : {}) },
    });
    cluster.on('error', (error: Error) => options.onError?.(error));
    // Fail fast at start, as for a standalone Redis: a cluster that never becomes ready is an error.
    const startTimeoutMs = options.connectTimeoutMs ?? 5000;
    let timer: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        const unreachable = () => reject(new Error(`Redis Cluster at ${redactUrl(url)} is unreachable or not ready`));
        timer = setTimeout(unreachable, startTimeoutMs);
        cluster.once('ready', resolve);
        cluster.once('end', unreachable);
      });
    } catch (error) {
      cluster.disconnect();
      throw error;
    } finally {
      clearTimeout(timer);
    }
    return new RedisStore(cluster, { ownsClient: true });
  }

  collection<T>(scope: string, name: string): Collection<T> {
    return new RedisCollection<T>(this, checkName('scope', scope), checkName('collection', name));
  }

  async increment(key: string, windowSeconds: number): Promise<number> {
    const window = checkWindow(windowSeconds);
    return this.command((client) => client.opendpsIncrement(`opendps:counter:${checkCounterKey(key)}`, window));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.ownsClient) return;
    if (this.client.status === 'ready') await this.client.quit().catch(() => this.client.disconnect());
    else this.client.disconnect();
  }

  /** @internal Moves a collection's documents from `fromPrefix` (an earlier key layout) once per process. */
  moveOnce(fromPrefix: string, to: RedisCollection<unknown>): Promise<void> {
    let move = this.moves.get(fromPrefix);
    if (!move) {
      move = this.command((client) => moveDocuments(client, fromPrefix, to));
      this.moves.set(fromPrefix, move);
      move.catch(() => this.moves.delete(fromPrefix));
    }
    return move;
  }

  /**
   * @internal One Redis round trip (or script). A Redis that cannot answer now (down, restarting,
   * a cluster slot without its master) is a coded 503 with `retry-after`, which devices retry
   * (docs/device-wire.md §6); any other failure stays what it was.
   */
  async command<R>(run: (client: Client) => Promise<R>): Promise<R> {
    const client = this.open();
    try {
      return await run(client);
    } catch (error) {
      throw isUnavailable(error) ? Errors.storeUnavailable(undefined, { 'retry-after': String(UNAVAILABLE_RETRY_AFTER_SECONDS) }) : error;
    }
  }

  /** @internal */
  open(): Client {
    if (this.closed) throw Errors.internal('The state store is closed.');
    return this.client;
  }
}

/**
 * Collections whose writes check each other atomically live in one hash slot (Cluster runs a
 * script on one slot only): a CA certificate is not deleted while an enrollment group names it,
 * and a group does not name a CA that is gone. The CA certificates of a scope therefore sit under
 * its enrollment groups' hash tag.
 */
const SHARED_SLOT: Readonly<Record<string, string>> = { caCertificates: 'enrollmentGroups' };

/** Every key of a collection starts with this; the part in braces is the Cluster hash tag. */
function prefixOf(scope: string, name: string): string {
  const slot = SHARED_SLOT[name];
  const tag = `${encodeURIComponent(scope)}/${encodeURIComponent(slot ?? name)}`;
  return slot ? `opendps:{${tag}}:${encodeURIComponent(name)}:` : `opendps:{${tag}}:`;
}

/** @internal */
export class RedisCollection<T> implements Collection<T> {
  readonly ids: string;
  readonly prefix: string;
  private readonly versioned: boolean;

  constructor(
    private readonly store: RedisStore,
    private readonly scope: string,
    private readonly name: string,
  ) {
    this.prefix = prefixOf(scope, name);
    this.ids = `${this.prefix}ids`;
    this.versioned = VERSIONED_COLLECTIONS.has(name);
  }

  /** A co-located collection's documents may still sit under its own hash tag (the layout before). */
  private moved(): Promise<void> {
    if (!SHARED_SLOT[this.name]) return Promise.resolve();
    return this.store.moveOnce(`opendps:{${encodeURIComponent(this.scope)}/${encodeURIComponent(this.name)}}:`, this as RedisCollection<unknown>);
  }

  /** The key prefix of a collection the caller wants checked atomically with this one. */
  private neighbour(name: string): string {
    if ((SHARED_SLOT[name] ?? name) !== (SHARED_SLOT[this.name] ?? this.name)) {
      throw new Error(`The collections '${this.name}' and '${name}' share no hash slot, so one script cannot check both.`);
    }
    return prefixOf(this.scope, name);
  }

  async get(id: string): Promise<StoredDocument<T> | undefined> {
    await this.moved();
    const folded = foldId(id);
    const [etag, value] = await this.store.command((client) => client.hmget(`${this.prefix}doc:${folded}`, 'e', 'v'));
    return etag && value ? { id: folded, etag, value: JSON.parse(value) as T } : undefined;
  }

  async put(id: string, value: T, options: PutOptions = {}): Promise<StoredDocument<T>> {
    await this.moved();
    const folded = foldId(id);
    const text = serialize(value);
    const ttl = ttlMillis(options) ?? 0;
    const members = indexEntries(options).map(([index, key]) => `${encodeURIComponent(index)}:${key}`);
    const required = options.requires ?? [];
    const requiredKeys = required.map((document) => `${this.neighbour(document.collection)}doc:${foldId(document.id)}`);
    const etag = options.etag ?? newEtag();
    const outcome = await this.store.command((client) =>
      client.opendpsPut(
        this.ids, this.prefix, folded, etag, text, condition(options.ifMatch), options.ifNoneMatch === '*' ? '*' : '', ttl,
        options.limit?.count ?? 0, this.versioned ? '1' : '', required.length, ...requiredKeys, ...members,
      ),
    );
    if (outcome === 409) throw Errors.conflict();
    if (outcome === 412) throw Errors.preconditionFailed();
    if (outcome === 507 && options.limit) throw options.limit.error();
    const missing = required[outcome - 1001];
    if (missing) throw missing.error();
    return storedDocument<T>(folded, etag, text);
  }

  async delete(id: string, options: DeleteOptions = {}): Promise<boolean> {
    await this.moved();
    const guard = options.unlessIndexed;
    const guardArgs = guard ? [`${this.neighbour(guard.collection)}${indexSource(guard.index, guard.key)}`, this.neighbour(guard.collection)] : [];
    const outcome = await this.store.command((client) => client.opendpsDelete(this.ids, this.prefix, foldId(id), condition(options.ifMatch), this.versioned ? newEtag() : '', ...guardArgs));
    if (outcome === 412) throw Errors.preconditionFailed();
    if (outcome === 409 && guard) throw guard.error();
    return outcome === 1;
  }

  async list(options: ListOptions = {}): Promise<Page<T>> {
    await this.moved();
    const size = pageSizeOf(options);
    const after = decodeContinuation(options.continuation) ?? '';
    const source = options.where ? indexSource(options.where.index, options.where.key) : 'ids';
    const rows = await this.store.command((client) => client.opendpsRange(this.ids, this.prefix, source, after, size + 1));
    const documents = toDocuments<T>(rows);
    const items = documents.slice(0, size);
    const last = items[items.length - 1];
    return documents.length > size && last ? { items, continuation: encodeContinuation(last.id) } : { items };
  }

  async findByIndex(index: string, key: string): Promise<StoredDocument<T>[]> {
    await this.moved();
    const rows = await this.store.command((client) => client.opendpsRange(this.ids, this.prefix, indexSource(index, key), '', 0));
    return toDocuments<T>(rows);
  }

  async count(): Promise<number> {
    await this.moved();
    return this.store.command((client) => client.opendpsCount(this.ids, this.prefix));
  }

  async version(): Promise<string | undefined> {
    if (!this.versioned) throw Errors.internal(`The collection '${this.name}' keeps no version.`);
    const version = await this.store.command((client) => client.get(`${this.prefix}version`));
    return version ?? undefined;
  }

}

/**
 * Copies every document (etag and index entries kept) from an earlier prefix into the collection,
 * then removes the old keys. Idempotent and safe on several nodes at once: a copy never replaces
 * a document already there, and removing what is gone is a no-op.
 */
async function moveDocuments(client: Client, fromPrefix: string, to: RedisCollection<unknown>): Promise<void> {
  const ids = await client.zrange(`${fromPrefix}ids`, 0, -1);
  for (const id of ids) {
    const [etag, value] = await client.hmget(`${fromPrefix}doc:${id}`, 'e', 'v');
    if (etag && value) {
      const members = await client.smembers(`${fromPrefix}ix:${id}`);
      const ttl = await client.pttl(`${fromPrefix}doc:${id}`);
      await client.opendpsPut(to.ids, to.prefix, id, etag, value, '', '*', ttl > 0 ? ttl : 0, 0, '', 0, ...members);
    }
    await client.opendpsDelete(`${fromPrefix}ids`, fromPrefix, id, '', '');
    await client.zrem(`${fromPrefix}ids`, id);
  }
}

/** The zset of the ids under one index key, relative to the collection's prefix. */
function indexSource(index: string, key: string): string {
  return `idx:${encodeURIComponent(index)}:${foldId(key)}`;
}

/**
 * The If-Match value as the scripts compare it: '' (none), '*', or the quoted etag. A weak etag
 * matches nothing, so it becomes `W/`, which no stored (quoted) etag equals.
 */
function condition(ifMatch: string | undefined): string {
  if (ifMatch === undefined) return '';
  return ifMatch.trim() === '*' ? '*' : (strongEtag(ifMatch) ?? 'W/');
}

function toDocuments<T>(rows: string[]): StoredDocument<T>[] {
  const documents: StoredDocument<T>[] = [];
  for (let i = 0; i + 2 < rows.length; i += 3) {
    documents.push({ id: rows[i] as string, etag: rows[i + 1] as string, value: JSON.parse(rows[i + 2] as string) as T });
  }
  return documents;
}

/** The URL without its password, for error messages and logs. */
/** Seconds a device is told to wait when Redis cannot answer (a restart or a failover takes about that). */
const UNAVAILABLE_RETRY_AFTER_SECONDS = 2;
/** Replies of a Redis that is up but cannot serve the key now; other replies are real errors (e.g. a script bug). */
const TRANSIENT_REPLY = /^(CLUSTERDOWN|TRYAGAIN|LOADING|MASTERDOWN|READONLY|NOREPLICAS|MOVED|ASK)\b/;

/** A failure of reaching Redis (connection lost, retries exhausted, cluster down) rather than of the command. */
function isUnavailable(error: unknown): boolean {
  if (!(error instanceof Error) || isDpsError(error)) return false;
  if (error.name === 'ReplyError') return TRANSIENT_REPLY.test(error.message);
  return true;
}

export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(an unparsable Redis URL)';
  }
}
