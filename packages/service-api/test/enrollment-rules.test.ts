import type { LinkedHub, ProvisioningInstance } from '@opendps/model';
import { enrollmentGroups, enrollments } from '@opendps/store';
import { instance, policy, startHarness, token, type Harness, type Reply } from './helpers';

/**
 * Enrollments are validated as their use requires, over real HTTPS: webhooks the server may call,
 * `static` hubs the instance has linked, initial twins within IoT Hub's limits, and If-Match
 * compared strongly. Each refusal is a 400 (or 412) in DPS's error shape, and nothing is stored.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = any;

const SCOPE = '0ne00000E01';
const SCOPE_STATIC = '0ne00000E02';
const SCOPE_DEV = '0ne00000E03';
const owner = policy('provisioningserviceowner');
const staticOwner = policy('provisioningserviceowner');
const devOwner = policy('provisioningserviceowner');

const linkedHub = (name: string): LinkedHub => ({ name, hostName: `${name}.hubs.example`, allocationWeight: 1, applyAllocationPolicy: true });
const withHubs = (base: ProvisioningInstance, allocationPolicy: ProvisioningInstance['allocationPolicy']): ProvisioningInstance => ({
  ...base,
  linkedHubs: [linkedHub('hub-a'), linkedHub('hub-b')],
  allocationPolicy,
});

let h: Harness;
let dev: Harness;
beforeAll(async () => {
  h = await startHarness([withHubs(instance('a', SCOPE, [owner]), 'hashed'), withHubs(instance('s', SCOPE_STATIC, [staticOwner]), 'static')]);
  dev = await startHarness([instance('dev', SCOPE_DEV, [devOwner])], undefined, { webhooks: { allowHttp: true } });
});
afterAll(async () => {
  await h.close();
  await dev.close();
});

function expectDpsError(reply: Reply, status: number, errorCode: number): Doc {
  const body = reply.json as Doc;
  expect({ status: reply.status, errorCode: body?.errorCode }).toEqual({ status, errorCode });
  expect(body).toEqual({ errorCode, trackingId: expect.any(String), message: expect.any(String), timestampUtc: expect.any(String) });
  expect(reply.headers['x-ms-error-code']).toBe(String(errorCode));
  return body;
}

const symmetric = (registrationId: string, extra: object = {}) => ({ registrationId, attestation: { type: 'symmetricKey' }, ...extra });
const custom = (webhookUrl: string) => ({ allocationPolicy: 'custom', customAllocationDefinition: { webhookUrl, apiVersion: '2021-10-01' } });

describe('custom allocation webhooks', () => {
  it.each([
    'http://169.254.169.254/latest/meta-data/iam/security-credentials/',
    'https://169.254.169.254/latest/meta-data/',
    'https://[fe80::1]/alloc',
    'https://[fd00:ec2::254]/latest/meta-data/',
    'https://100.100.100.200/latest/meta-data/',
    'https://metadata.google.internal/computeMetadata/v1/',
    'http://localhost:7071/api/alloc',
    'http://fn.example.com/api/alloc',
    'ftp://fn.example.com/alloc',
  ])('refuses %s with 400012, for enrollments, groups and bulk items', async (url) => {
    expectDpsError(await h.call('PUT', '/enrollments/hook-1', { body: symmetric('hook-1', custom(url)) }), 400, 400012);
    expectDpsError(
      await h.call('PUT', '/enrollmentGroups/hook-g', { body: { enrollmentGroupId: 'hook-g', attestation: { type: 'symmetricKey' }, ...custom(url) } }),
      400,
      400012,
    );
    const bulk = await h.call('POST', '/enrollments', { body: { mode: 'create', enrollments: [symmetric('hook-2', custom(url))] } });
    expect(bulk.json).toMatchObject({ isSuccessful: false, errors: [{ registrationId: 'hook-2', errorCode: 400012 }] });
    expect(await enrollments(h.store, SCOPE).get('hook-1')).toBeUndefined();
    expect(await enrollments(h.store, SCOPE).get('hook-2')).toBeUndefined();
    expect(await enrollmentGroups(h.store, SCOPE).get('hook-g')).toBeUndefined();
  });

  it('accepts https:// webhooks, and http:// to loopback only where the server allows it', async () => {
    expect((await h.call('PUT', '/enrollments/hook-ok', { body: symmetric('hook-ok', custom('https://fn.example.com/api/alloc?code=k')) })).status).toBe(200);
    const local = symmetric('hook-local', custom('http://localhost:7071/api/alloc'));
    expect((await dev.call('PUT', '/enrollments/hook-local', { body: local })).status).toBe(200);
    expectDpsError(await dev.call('PUT', '/enrollments/hook-far', { body: symmetric('hook-far', custom('http://10.0.0.1/alloc')) }), 400, 400012);
    expectDpsError(await dev.call('PUT', '/enrollments/hook-meta', { body: symmetric('hook-meta', custom('http://169.254.169.254/')) }), 400, 400012);
  });
});

describe('static allocation', () => {
  it('refuses a static hub the instance has not linked; linked hubs count by name or host name, in any case', async () => {
    const refused = expectDpsError(
      await h.call('PUT', '/enrollments/static-1', { body: symmetric('static-1', { allocationPolicy: 'static', iotHubs: ['rogue.azure-devices.net'] }) }),
      400,
      400012,
    );
    expect(refused.message).toMatch(/rogue\.azure-devices\.net.*not a hub linked/);
    expectDpsError(
      await h.call('PUT', '/enrollments/static-1', { body: symmetric('static-1', { allocationPolicy: 'static', iotHubHostName: 'hub-c.hubs.example' }) }),
      400,
      400012,
    );
    expect(await enrollments(h.store, SCOPE).get('static-1')).toBeUndefined();
    for (const [id, named] of [['static-name', 'hub-a'], ['static-host', 'HUB-B.hubs.example'], ['static-hostname', 'hub-a.hubs.example']] as const) {
      const field = id === 'static-hostname' ? { iotHubHostName: named } : { iotHubs: [named] };
      const reply = await h.call('PUT', `/enrollments/${id}`, { body: symmetric(id, { allocationPolicy: 'static', ...field }) });
      expect(reply.status).toBe(200);
    }
  });

  it('holds an enrollment of an instance whose default policy is static to the same rule', async () => {
    const asStatic = { authorization: token(staticOwner) };
    expectDpsError(await h.call('PUT', '/enrollments/default-static', { body: symmetric('default-static'), ...asStatic }), 400, 400012);
    expectDpsError(
      await h.call('PUT', '/enrollments/default-static', { body: symmetric('default-static', { iotHubs: ['elsewhere.example'] }), ...asStatic }),
      400,
      400012,
    );
    expect((await h.call('PUT', '/enrollments/default-static', { body: symmetric('default-static', { iotHubs: ['hub-b'] }), ...asStatic })).status).toBe(200);
    // An enrollment's own policy wins over the instance default.
    expect((await h.call('PUT', '/enrollments/own-policy', { body: symmetric('own-policy', { allocationPolicy: 'hashed' }), ...asStatic })).status).toBe(200);
  });
});

describe('initial twin limits', () => {
  const nested = (levels: number, leaf: unknown = 'value'): Doc => {
    let value: Doc = leaf;
    for (let i = 0; i < levels; i++) value = { [`l${levels - i}`]: value };
    return value;
  };
  const twin = (id: string, initialTwin: unknown) => symmetric(id, { initialTwin });

  it('refuses an initial twin nested 3,000 levels deep with 400017 and keeps serving', async () => {
    const deep = '{"a":'.repeat(3000) + '1' + '}'.repeat(3000);
    const text = `{"registrationId":"deep-1","attestation":{"type":"symmetricKey"},"initialTwin":{"properties":{"desired":${deep}}}}`;
    expectDpsError(await h.call('PUT', '/enrollments/deep-1', { body: text }), 400, 400017);
    const tagsText = `{"registrationId":"deep-1","attestation":{"type":"symmetricKey"},"initialTwin":{"tags":${deep}}}`;
    expectDpsError(await h.call('PUT', '/enrollments/deep-1', { body: tagsText }), 400, 400017);
    expect(await enrollments(h.store, SCOPE).get('deep-1')).toBeUndefined();
    expect((await h.call('GET', '/enrollments/deep-1')).status).toBe(404);
  });

  it('accepts objects nested 10 levels below tags or desired, as IoT Hub documents, and refuses 11', async () => {
    // IoT Hub's own example of the deepest valid tags: one … ten, then {"property": "value"}.
    const documented = { one: { two: { three: { four: { five: { six: { seven: { eight: { nine: { ten: { property: 'value' } } } } } } } } } } };
    const ten = await h.call('PUT', '/enrollments/depth-10', { body: twin('depth-10', { tags: documented, properties: { desired: nested(11) } }) });
    expect(ten.status).toBe(200);
    expect((ten.json as Doc).initialTwin.tags).toEqual(documented);
    expectDpsError(await h.call('PUT', '/enrollments/depth-11', { body: twin('depth-11', { tags: nested(12) }) }), 400, 400017);
    expectDpsError(await h.call('PUT', '/enrollments/depth-11', { body: twin('depth-11', { properties: { desired: nested(12) } }) }), 400, 400017);
    // an array is a level too
    expectDpsError(await h.call('PUT', '/enrollments/depth-11', { body: twin('depth-11', { tags: nested(11, [1]) }) }), 400, 400017);
  });

  it.each([
    ['tags over 8 KB', { tags: { a: 'x'.repeat(4000), b: 'x'.repeat(4000), c: 'x'.repeat(400) } }],
    ['desired properties over 32 KB', { properties: { desired: Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`k${i}`, 'x'.repeat(4000)])) } }],
    ['a string value over 4 KB', { properties: { desired: { blob: 'x'.repeat(4097) } } }],
    ['a key over 1 KB', { tags: { ['k'.repeat(1025)]: 1 } }],
    ['a key with a dot', { tags: { 'a.b': 1 } }],
    ['a key with a $ below the top level', { properties: { desired: { a: { $b: 1 } } } }],
    ['a key with a space', { tags: { 'a b': 1 } }],
    ['a key with a control character', { tags: { 'a\u0007': 1 } }],
    ['an empty key', { tags: { '': 1 } }],
    ['an integer past 2^52', { properties: { desired: { n: 4503599627370496 } } }],
  ])('refuses %s with 400017', async (_name, initialTwin) => {
    expectDpsError(await h.call('PUT', '/enrollments/twin-bad', { body: twin('twin-bad', initialTwin) }), 400, 400017);
    expectDpsError(
      await h.call('PUT', '/enrollmentGroups/twin-bad-g', { body: { enrollmentGroupId: 'twin-bad-g', attestation: { type: 'symmetricKey' }, initialTwin } }),
      400,
      400017,
    );
  });

  it('accepts a twin at the limits, arrays, and the $version/$metadata a read-modify-write sends back', async () => {
    const initialTwin = {
      tags: { a: 'x'.repeat(4000), b: 'x'.repeat(4000) },
      properties: {
        desired: { $version: 3, $metadata: { $lastUpdated: '2026-01-01T00:00:00Z' }, list: [1, 'two', { three: true }], n: 4503599627370495, f: 1.5 },
      },
    };
    const reply = await h.call('PUT', '/enrollments/twin-ok', { body: twin('twin-ok', initialTwin) });
    expect(reply.status).toBe(200);
    expect((reply.json as Doc).initialTwin).toEqual(initialTwin);
  });
});

describe('If-Match compares strongly', () => {
  it('answers a weak etag with 412 on PUT, DELETE and bulk updateIfMatchETag; * and the strong etag still match', async () => {
    const created = await h.call('PUT', '/enrollments/etag-1', { body: symmetric('etag-1') });
    const etag = (created.json as Doc).etag as string;
    expectDpsError(await h.call('PUT', '/enrollments/etag-1', { body: symmetric('etag-1'), headers: { 'if-match': `W/${etag}` } }), 412, 412001);
    expectDpsError(await h.call('DELETE', '/enrollments/etag-1', { headers: { 'if-match': `W/${etag}` } }), 412, 412001);
    const bulk = await h.call('POST', '/enrollments', {
      body: { mode: 'updateIfMatchETag', enrollments: [{ ...symmetric('etag-1'), etag: `W/${etag}` }] },
    });
    expect(bulk.json).toMatchObject({ isSuccessful: false, errors: [{ registrationId: 'etag-1', errorCode: 412001 }] });
    expect((await enrollments(h.store, SCOPE).get('etag-1'))?.etag).toBe(etag);

    const updated = await h.call('PUT', '/enrollments/etag-1', { body: symmetric('etag-1'), headers: { 'if-match': etag } });
    expect(updated.status).toBe(200);
    expect((await h.call('PUT', '/enrollments/etag-1', { body: symmetric('etag-1'), headers: { 'if-match': '*' } })).status).toBe(200);
    expect((await h.call('DELETE', '/enrollments/etag-1', { headers: { 'if-match': '*' } })).status).toBe(204);
  });
});
