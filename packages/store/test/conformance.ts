import { randomUUID } from 'node:crypto';
import { DpsError, Errors, type CaCertificate, type EnrollmentGroup } from '@opendps/model';
import { MAX_CA_CERTIFICATES, caCertificates, enrollmentGroups, registrations, type Collection, type Store, type StoredDocument } from '../src';

/** Rejects with a DpsError of this status and errorCode. */
export async function expectDpsError(promise: Promise<unknown>, status: number, errorCode: number): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DpsError);
  expect({ status: (error as DpsError).status, errorCode: (error as DpsError).errorCode }).toEqual({ status, errorCode });
}

/**
 * How a backend lets a TTL or a counter window pass: a fake clock is moved past it; a backend on a
 * clock no test can move (Redis uses its server's TIME) is polled until `expired` holds.
 */
export interface StoreTime {
  advance(ms: number): void;
}

async function letExpire(time: StoreTime | undefined, ms: number, expired: () => Promise<boolean>): Promise<void> {
  if (time) {
    time.advance(ms);
    expect(await expired()).toBe(true);
    return;
  }
  const deadline = Date.now() + ms + 5000;
  while (!(await expired())) {
    if (Date.now() > deadline) throw new Error(`still there ${ms} ms after its expiry`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
const ETAG = /^"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"$/;

interface Doc {
  name: string;
  n?: number;
}

async function allPages<T>(collection: Collection<T>, pageSize: number, where?: { index: string; key: string }) {
  const pages: StoredDocument<T>[][] = [];
  let continuation: string | undefined;
  do {
    const page = await collection.list({ pageSize, continuation, where });
    pages.push(page.items);
    continuation = page.continuation;
    expect(pages.length).toBeLessThan(100);
  } while (continuation !== undefined);
  return pages;
}

/**
 * The one behavioural contract of `Store`, run unchanged against every backend. Each test works
 * in its own random scope, so backends need no wiping between tests.
 */
export function describeStoreConformance(
  name: string,
  open: () => Promise<Store>,
  cleanup?: () => Promise<void> | void,
  time?: StoreTime,
): void {
  describe(`Store conformance: ${name}`, () => {
    let store: Store;
    let scope: string;
    let docs: Collection<Doc>;

    beforeAll(async () => {
      store = await open();
    });
    afterAll(async () => {
      await store?.close();
      await cleanup?.();
    });
    beforeEach(() => {
      scope = `scope-${randomUUID()}`;
      docs = store.collection<Doc>(scope, 'enrollments');
    });

    test('put, get, update and delete a document', async () => {
      expect(await docs.get('dev-1')).toBeUndefined();
      const created = await docs.put('dev-1', { name: 'first', n: 1 });
      expect(created).toEqual({ id: 'dev-1', etag: expect.stringMatching(ETAG), value: { name: 'first', n: 1 } });
      expect(await docs.get('dev-1')).toEqual(created);

      const updated = await docs.put('dev-1', { name: 'second' });
      expect(updated.value).toEqual({ name: 'second' });
      expect(await docs.get('dev-1')).toEqual(updated);

      expect(await docs.delete('dev-1')).toBe(true);
      expect(await docs.get('dev-1')).toBeUndefined();
      expect(await docs.delete('dev-1')).toBe(false);
      expect(await docs.count()).toBe(0);
    });

    test('ids are case-insensitive; the value keeps its casing', async () => {
      const written = await docs.put('Dev-MiXed', { name: 'Dev-MiXed' });
      expect(written.id).toBe('dev-mixed');
      for (const id of ['dev-mixed', 'DEV-MIXED', 'Dev-MiXed']) {
        expect(await docs.get(id)).toEqual({ id: 'dev-mixed', etag: written.etag, value: { name: 'Dev-MiXed' } });
      }
      await docs.put('DEV-MIXED', { name: 'again' });
      expect(await docs.count()).toBe(1);
      expect(await docs.delete('dev-MIXED')).toBe(true);
      expect(await docs.get('Dev-MiXed')).toBeUndefined();
    });

    test('every write returns a fresh quoted etag', async () => {
      const etags = new Set<string>();
      for (let i = 0; i < 5; i++) {
        const written = await docs.put('dev-1', { name: 'same' });
        expect(written.etag).toMatch(ETAG);
        etags.add(written.etag);
        expect((await docs.get('dev-1'))?.etag).toBe(written.etag);
      }
      expect(etags.size).toBe(5);
    });

    test('ifMatch: the current etag (quoted or not) wins, a stale one or a missing document is 412', async () => {
      const v1 = await docs.put('dev-1', { name: 'v1' });
      const v2 = await docs.put('dev-1', { name: 'v2' }, { ifMatch: v1.etag });
      await expectDpsError(docs.put('dev-1', { name: 'stale' }, { ifMatch: v1.etag }), 412, 412001);
      expect((await docs.get('dev-1'))?.value).toEqual({ name: 'v2' });

      const v3 = await docs.put('dev-1', { name: 'v3' }, { ifMatch: v2.etag.replace(/"/g, '') });
      expect(v3.value).toEqual({ name: 'v3' });
      await expectDpsError(docs.put('dev-1', { name: 'x' }, { ifMatch: '"not-the-etag"' }), 412, 412001);

      await expectDpsError(docs.put('missing', { name: 'x' }, { ifMatch: '*' }), 412, 412001);
      await expectDpsError(docs.put('missing', { name: 'x' }, { ifMatch: v3.etag }), 412, 412001);
      expect(await docs.get('missing')).toBeUndefined();
      expect((await docs.put('dev-1', { name: 'v4' }, { ifMatch: '*' })).value).toEqual({ name: 'v4' });
    });

    test('ifMatch compares strongly: the current etag marked weak (W/) is 412 on put and delete', async () => {
      const v1 = await docs.put('dev-1', { name: 'v1' });
      await expectDpsError(docs.put('dev-1', { name: 'weak' }, { ifMatch: `W/${v1.etag}` }), 412, 412001);
      await expectDpsError(docs.put('dev-1', { name: 'weak' }, { ifMatch: ` w/${v1.etag}` }), 412, 412001);
      await expectDpsError(docs.delete('dev-1', { ifMatch: `W/${v1.etag}` }), 412, 412001);
      expect(await docs.get('dev-1')).toEqual(v1);
      expect(await docs.delete('dev-1', { ifMatch: v1.etag })).toBe(true);
    });

    test('ifNoneMatch * creates once, then 409', async () => {
      const created = await docs.put('dev-1', { name: 'v1' }, { ifNoneMatch: '*' });
      await expectDpsError(docs.put('DEV-1', { name: 'v2' }, { ifNoneMatch: '*' }), 409, 409001);
      expect(await docs.get('dev-1')).toEqual(created);
    });

    test('a put may name the etag it stores; putAlongside answers with the document before it is written', async () => {
      const named = await docs.put('dev-1', { name: 'v1' }, { etag: '"chosen-1"' });
      expect(named.etag).toBe('"chosen-1"');
      expect(await docs.get('dev-1')).toEqual(named);
      const states = registrations(store, 'scope-a');
      const { stored, written } = states.putAlongside({ registrationId: 'Dev-A', status: 'assigned', assignedHub: 'hub-1' });
      await written;
      expect(await states.get('dev-a')).toEqual(stored);
      expect(stored.createdDateTimeUtc).toBe(stored.lastUpdatedDateTimeUtc);
      // Nothing is read: the value's createdDateTimeUtc is kept as given.
      const again = states.putAlongside({ ...stored, createdDateTimeUtc: '2020-01-01T00:00:00.0000000Z' });
      await again.written;
      expect(await states.get('dev-a')).toEqual(again.stored);
      expect(again.stored.etag).not.toBe(stored.etag);
    });

    test('delete with an etag: a mismatch is 412 and keeps the document', async () => {
      const written = await docs.put('dev-1', { name: 'v1' });
      await expectDpsError(docs.delete('dev-1', { ifMatch: '"0000"' }), 412, 412001);
      expect(await docs.get('dev-1')).toEqual(written);
      expect(await docs.delete('dev-1', { ifMatch: written.etag })).toBe(true);
      expect(await docs.get('dev-1')).toBeUndefined();
      // Nothing to delete is `false` whatever the condition (the service answers 404).
      expect(await docs.delete('dev-1', { ifMatch: '*' })).toBe(false);
      await docs.put('dev-2', { name: 'v1' });
      expect(await docs.delete('dev-2', { ifMatch: '*' })).toBe(true);
    });

    test('list pages through every document in id order; no continuation on the last page', async () => {
      const ids = Array.from({ length: 25 }, (_, i) => `dev-${String(i).padStart(2, '0')}`);
      const shuffled = [...ids].sort(() => Math.random() - 0.5);
      for (const id of shuffled) await docs.put(id.toUpperCase(), { name: id });

      const pages = await allPages(docs, 10);
      expect(pages.map((p) => p.length)).toEqual([10, 10, 5]);
      expect(pages.flat().map((d) => d.id)).toEqual(ids);
      expect(pages.flat().map((d) => d.value.name)).toEqual(ids);

      const first = await docs.list({ pageSize: 10 });
      expect(typeof first.continuation).toBe('string');
      // Exactly filled pages: the last full page already says there is nothing more.
      await docs.delete('dev-24');
      await docs.delete('dev-23');
      await docs.delete('dev-22');
      await docs.delete('dev-21');
      await docs.delete('dev-20');
      expect((await allPages(docs, 10)).map((p) => p.length)).toEqual([10, 10]);
      const whole = await docs.list();
      expect(whole.items).toHaveLength(20);
      expect(whole).not.toHaveProperty('continuation');
      expect(await store.collection(scope, 'empty').list()).toEqual({ items: [] });
    });

    test('a continuation token we did not issue is a 400 on x-ms-continuation', async () => {
      await docs.put('dev-1', { name: 'a' });
      for (const token of ['garbage!', 'bm90LWpzb24', Buffer.from('{"after":5}').toString('base64url'), '']) {
        await expectDpsError(docs.list({ continuation: token }), 400, 400015);
      }
    });

    test('list with a where filter pages through that index key only, in id order', async () => {
      const members: string[] = [];
      for (let i = 0; i < 15; i++) {
        const id = `dev-${String(i).padStart(2, '0')}`;
        const group = i % 3 === 0 ? 'Group-A' : 'group-b';
        if (group === 'Group-A') members.push(id);
        await docs.put(id, { name: id }, { indexes: { group: [group] } });
      }
      const pages = await allPages(docs, 2, { index: 'group', key: 'group-a' });
      expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
      expect(pages.flat().map((d) => d.id)).toEqual(members);
      const b = await docs.list({ where: { index: 'group', key: 'GROUP-B' } });
      expect(b.items).toHaveLength(10);
      expect((await docs.list({ where: { index: 'other', key: 'group-a' } })).items).toEqual([]);
    });

    test('findByIndex; a put replaces the index entries and a delete removes them', async () => {
      await docs.put('dev-1', { name: '1' }, { indexes: { thumbprint: ['AA', 'bb'], group: ['g'] } });
      await docs.put('dev-2', { name: '2' }, { indexes: { thumbprint: ['aa'] } });
      expect((await docs.findByIndex('thumbprint', 'aa')).map((d) => d.id)).toEqual(['dev-1', 'dev-2']);
      expect((await docs.findByIndex('thumbprint', 'BB')).map((d) => d.value)).toEqual([{ name: '1' }]);
      expect(await docs.findByIndex('group', 'aa')).toEqual([]);

      const replaced = await docs.put('dev-1', { name: '1b' }, { indexes: { thumbprint: ['cc'] } });
      expect(await docs.findByIndex('thumbprint', 'cc')).toEqual([replaced]);
      expect((await docs.findByIndex('thumbprint', 'aa')).map((d) => d.id)).toEqual(['dev-2']);
      expect(await docs.findByIndex('thumbprint', 'bb')).toEqual([]);
      expect(await docs.findByIndex('group', 'g')).toEqual([]);

      await docs.put('dev-1', { name: '1c' });
      expect(await docs.findByIndex('thumbprint', 'cc')).toEqual([]);

      await docs.put('dev-1', { name: '1d' }, { indexes: { thumbprint: ['dd'] } });
      await docs.delete('dev-1');
      await docs.delete('dev-2');
      expect(await docs.findByIndex('thumbprint', 'dd')).toEqual([]);
      expect(await docs.findByIndex('thumbprint', 'aa')).toEqual([]);
      expect((await docs.list({ where: { index: 'thumbprint', key: 'dd' } })).items).toEqual([]);
    });

    test('a failed conditional put changes neither the document nor its index entries', async () => {
      const written = await docs.put('dev-1', { name: '1' }, { indexes: { thumbprint: ['aa'] } });
      await expectDpsError(docs.put('dev-1', { name: 'x' }, { ifMatch: '"stale"', indexes: { thumbprint: ['zz'] } }), 412, 412001);
      await expectDpsError(docs.put('dev-1', { name: 'x' }, { ifNoneMatch: '*', indexes: { thumbprint: ['zz'] } }), 409, 409001);
      expect(await docs.findByIndex('thumbprint', 'aa')).toEqual([written]);
      expect(await docs.findByIndex('thumbprint', 'zz')).toEqual([]);
    });

    test('a document with a TTL disappears from get, list, where, findByIndex and count', async () => {
      await docs.put('op-1', { name: 'short' }, { ttlSeconds: 1, indexes: { status: ['assigning'] } });
      await docs.put('op-2', { name: 'made permanent' }, { ttlSeconds: 1, indexes: { status: ['assigning'] } });
      await docs.put('op-2', { name: 'made permanent' }, { indexes: { status: ['assigning'] } });
      await docs.put('op-3', { name: 'long' }, { ttlSeconds: 60, indexes: { status: ['assigning'] } });
      expect(await docs.get('op-1')).toBeDefined();
      expect(await docs.count()).toBe(3);

      await letExpire(time, 1001, async () => (await docs.get('op-1')) === undefined);
      expect((await docs.list()).items.map((d) => d.id)).toEqual(['op-2', 'op-3']);
      expect((await docs.list({ pageSize: 1 })).items.map((d) => d.id)).toEqual(['op-2']);
      expect((await docs.list({ where: { index: 'status', key: 'assigning' } })).items.map((d) => d.id)).toEqual([
        'op-2',
        'op-3',
      ]);
      expect((await docs.findByIndex('status', 'assigning')).map((d) => d.id)).toEqual(['op-2', 'op-3']);
      expect(await docs.count()).toBe(2);
      expect(await docs.delete('op-1')).toBe(false);
      await expectDpsError(docs.put('op-1', { name: 'x' }, { ifMatch: '*' }), 412, 412001);
      // An expired document is gone: it can be created again, without its old index entries.
      await docs.put('op-1', { name: 'again' }, { ifNoneMatch: '*' });
      expect((await docs.findByIndex('status', 'assigning')).map((d) => d.id)).toEqual(['op-2', 'op-3']);
      expect(await docs.count()).toBe(3);
    });

    test('count follows puts and deletes', async () => {
      expect(await docs.count()).toBe(0);
      for (let i = 0; i < 7; i++) await docs.put(`d${i}`, { name: `${i}` });
      await docs.put('d0', { name: 'overwrite' });
      expect(await docs.count()).toBe(7);
      await docs.delete('d3');
      expect(await docs.count()).toBe(6);
    });

    test('increment counts within a window and starts again after it', async () => {
      const key = `${scope}/registrations`;
      expect(await store.increment(key, 1)).toBe(1);
      expect(await store.increment(key, 1)).toBe(2);
      expect(await store.increment(key, 1)).toBe(3);
      expect(await store.increment(`${key}/other`, 1)).toBe(1);
      expect(await store.increment(`${scope}/long`, 60)).toBe(1);
      // Probing increments the counter; only a new window answers 1.
      await letExpire(time, 1001, async () => (await store.increment(key, 1)) === 1);
      expect(await store.increment(`${scope}/long`, 60)).toBe(2);
    });

    test('scopes and collections are isolated from each other', async () => {
      const other = store.collection<Doc>(`${scope}-other`, 'enrollments');
      const groups = store.collection<Doc>(scope, 'enrollmentGroups');
      await docs.put('dev-1', { name: 'mine' }, { indexes: { k: ['v'] } });
      await other.put('dev-1', { name: 'theirs' }, { indexes: { k: ['v'] } });
      expect((await docs.get('dev-1'))?.value).toEqual({ name: 'mine' });
      expect((await other.get('dev-1'))?.value).toEqual({ name: 'theirs' });
      expect(await groups.get('dev-1')).toBeUndefined();
      expect((await docs.findByIndex('k', 'v')).map((d) => d.value.name)).toEqual(['mine']);
      await other.put('dev-2', { name: 'theirs too' });
      expect(await docs.count()).toBe(1);
      expect(await other.count()).toBe(2);
      expect((await docs.list()).items.map((d) => d.value.name)).toEqual(['mine']);
      await docs.delete('dev-1');
      expect((await other.get('dev-1'))?.value).toEqual({ name: 'theirs' });
    });

    test('concurrent compare-and-set: exactly one of many puts with the same ifMatch wins', async () => {
      const base = await docs.put('dev-1', { name: 'base', n: 0 });
      const results = await Promise.allSettled(
        Array.from({ length: 20 }, (_, n) => docs.put('dev-1', { name: 'contender', n }, { ifMatch: base.etag })),
      );
      const won = results.filter((r): r is PromiseFulfilledResult<StoredDocument<Doc>> => r.status === 'fulfilled');
      expect(won).toHaveLength(1);
      for (const r of results) {
        if (r.status === 'rejected') expect((r.reason as DpsError).status).toBe(412);
      }
      expect(await docs.get('dev-1')).toEqual(won[0]?.value);

      const creates = await Promise.allSettled(
        Array.from({ length: 10 }, (_, n) => docs.put('dev-new', { name: 'c', n }, { ifNoneMatch: '*' })),
      );
      expect(creates.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(creates.filter((r) => r.status === 'rejected' && (r.reason as DpsError).status === 409)).toHaveLength(9);
    });

    describe('checks across collections in one atomic step (CA certificates and the groups naming them)', () => {
      const ca = (name: string): CaCertificate => ({
        name,
        certificate: 'PEM',
        isVerified: true,
        info: {
          subjectName: `CN=${name}`, sha1Thumbprint: `SHA1${name}`, sha256Thumbprint: `SHA256${name}`, issuerName: `CN=${name}`,
          notBeforeUtc: '2026-01-01T00:00:00Z', notAfterUtc: '2036-01-01T00:00:00Z', serialNumber: '01', version: 3,
        },
      });
      const group = (enrollmentGroupId: string, caName: string): EnrollmentGroup => ({
        enrollmentGroupId,
        attestation: { type: 'x509', x509: { caReferences: { primary: caName } } },
      });

      test('requires: a put naming a missing document throws its error and writes nothing', async () => {
        const groups = store.collection<Doc>(scope, 'enrollmentGroups');
        const cas = store.collection<Doc>(scope, 'caCertificates');
        const requires = [{ collection: 'caCertificates', id: 'Root-1', error: () => Errors.invalidAttestation('no such CA') }];
        await expectDpsError(groups.put('g-1', { name: 'g' }, { requires, indexes: { caReference: ['root-1'] } }), 400, 400010);
        expect(await groups.get('g-1')).toBeUndefined();
        expect(await groups.findByIndex('caReference', 'root-1')).toEqual([]);
        await cas.put('ROOT-1', { name: 'root' });
        expect((await groups.put('g-1', { name: 'g' }, { requires })).value).toEqual({ name: 'g' });
      });

      test('unlessIndexed: a delete is refused while a document of the other collection is under the key, in any case', async () => {
        const groups = store.collection<Doc>(scope, 'enrollmentGroups');
        const cas = store.collection<Doc>(scope, 'caCertificates');
        const written = await cas.put('Root-2', { name: 'root' });
        await groups.put('g-2', { name: 'g' }, { indexes: { caReference: ['ROOT-2'] } });
        const unlessIndexed = { collection: 'enrollmentGroups', index: 'caReference', key: 'root-2', error: () => Errors.caCertificateInUse() };
        await expectDpsError(cas.delete('root-2', { unlessIndexed }), 409, 409002);
        expect(await cas.get('root-2')).toEqual(written);
        await groups.put('g-2', { name: 'g' }, { indexes: { caReference: ['other'] } });
        expect(await cas.delete('root-2', { unlessIndexed })).toBe(true);
      });

      test('limit: a new document past the limit throws its error; replacing one does not', async () => {
        const limit = { count: 2, error: () => Errors.caCertificateLimit() };
        await docs.put('a', { name: 'a' }, { limit });
        await docs.put('b', { name: 'b' }, { limit });
        await expectDpsError(docs.put('c', { name: 'c' }, { limit }), 409, 409003);
        expect(await docs.get('c')).toBeUndefined();
        expect((await docs.put('B', { name: 'b2' }, { limit })).value).toEqual({ name: 'b2' });
        await docs.delete('a');
        expect((await docs.put('c', { name: 'c' }, { limit })).value).toEqual({ name: 'c' });
      });

      test(`the repositories: at most ${MAX_CA_CERTIFICATES} CA certificates, names folded to one case`, async () => {
        const repository = caCertificates(store, scope);
        for (let i = 0; i < MAX_CA_CERTIFICATES; i++) await repository.put(ca(`ca-${i}`));
        await expectDpsError(repository.put(ca('one-too-many')), 409, 409003);
        expect(await repository.count()).toBe(MAX_CA_CERTIFICATES);
        expect((await repository.put(ca('CA-0'))).name).toBe('CA-0');
        expect(await repository.count()).toBe(MAX_CA_CERTIFICATES);
      });

      test('a CA delete racing a group write naming it: exactly one wins, and no group is left naming a CA that is gone', async () => {
        const cas = caCertificates(store, scope);
        const groups = enrollmentGroups(store, scope);
        const rounds = 20;
        for (let i = 0; i < rounds; i++) await cas.put(ca(`race-${i}`));
        const outcomes = await Promise.all(
          Array.from({ length: rounds }, (_, i) =>
            Promise.allSettled(
              i % 2 === 0
                ? [cas.delete(`race-${i}`), groups.put(group(`g-${i}`, `RACE-${i}`))]
                : [groups.put(group(`g-${i}`, `RACE-${i}`)), cas.delete(`race-${i}`)],
            ),
          ),
        );
        for (let i = 0; i < rounds; i++) {
          const stored = { ca: await cas.get(`race-${i}`), group: await groups.get(`g-${i}`) };
          expect(stored.ca === undefined && stored.group !== undefined).toBe(false);
          const won = (outcomes[i] ?? []).filter((outcome) => outcome.status === 'fulfilled' && outcome.value !== false);
          expect(won).toHaveLength(1);
          for (const outcome of outcomes[i] ?? []) {
            if (outcome.status === 'rejected') expect([400010, 409002]).toContain((outcome.reason as DpsError).errorCode);
          }
        }
      });
    });

    test('a versioned collection: every put and delete replaces its version, in any scope on its own; expiry and failed writes do not', async () => {
      const groups = store.collection<Doc>(scope, 'enrollmentGroups');
      const elsewhere = store.collection<Doc>(`${scope}-other`, 'enrollmentGroups');
      expect(await groups.version()).toBeUndefined();
      const seen = new Set<string | undefined>([undefined]);
      const changed = async () => {
        const version = await groups.version();
        expect(seen.has(version)).toBe(false);
        seen.add(version);
      };
      const written = await groups.put('g-1', { name: 'a' });
      await changed();
      await groups.put('g-1', { name: 'b' }, { indexes: { attestationType: ['symmetrickey'] } });
      await changed();
      const current = await groups.version();
      await expectDpsError(groups.put('g-1', { name: 'c' }, { ifMatch: written.etag }), 412, 412001);
      await expectDpsError(groups.put('g-1', { name: 'c' }, { ifNoneMatch: '*' }), 409, 409001);
      expect(await groups.delete('nothing-there')).toBe(false);
      expect(await groups.version()).toBe(current);
      await elsewhere.put('g-1', { name: 'other scope' });
      expect(await groups.version()).toBe(current);
      expect(await groups.delete('g-1')).toBe(true);
      await changed();
      // Only the collections nodes cache keep one; asking another is a programming error.
      await expect(docs.version()).rejects.toMatchObject({ status: 500 });
    });

    test('bad input is a coded 400, not a crash', async () => {
      await expectDpsError(docs.put('', { name: 'x' }), 400, 400002);
      await expectDpsError(docs.get(undefined as unknown as string), 400, 400002);
      await expectDpsError(docs.put('dev-1', undefined as unknown as Doc), 400, 400002);
      await expectDpsError(docs.put('dev-1', { name: 'x' }, { ttlSeconds: -1 }), 400, 400002);
      await expectDpsError(docs.put('dev-1', { name: 'x' }, { indexes: { k: [''] } }), 400, 400002);
      await expectDpsError(store.increment('k', 0), 400, 400002);
      expect(await docs.count()).toBe(0);
    });

    test('values round-trip as JSON, unicode and nesting included', async () => {
      const value = { name: 'ünïcødé ✓ "quoted" \\ back', n: 1.5, nested: { list: [1, null, 'x'], empty: {} } };
      await docs.put('dev-üni', value as unknown as Doc);
      expect((await docs.get('DEV-ÜNI'))?.value).toEqual(value);
    });
  });
}
