import { generateSymmetricKey } from '@opendps/model';
import type { RunningServer } from '../src';
import { registerOverHttps, startAdminServer, type AdminCall, type HttpsAnswer } from './admin-support';
import { tempDir } from './support';

/**
 * A built-in hub's devices and twins through the admin API (src/admin/hub-devices.ts), over real
 * HTTPS against an in-process server: list, read, patch desired properties under an etag, refusals.
 */
describe('admin API: hub devices', () => {
  const dir = tempDir();
  let server: RunningServer;
  let ca: string;
  let httpsPort: number;
  let owner: string;
  let call: AdminCall;

  const code = (answer: HttpsAnswer): [number, number | undefined] => [answer.status, (answer.body as { errorCode?: number } | undefined)?.errorCode];
  const devices = '/admin/instances/default/hubs/hub-1/devices';

  beforeAll(async () => {
    ({ server, ca, httpsPort, owner, call } = await startAdminServer(dir.path));
    // Two devices provisioned the ordinary way: the hub's registry holds them with their initial twins.
    for (const registrationId of ['hd-one', 'hd-two']) {
      const key = generateSymmetricKey();
      const enrolled = await call('PUT', `/enrollments/${registrationId}?api-version=2021-10-01`, {
        as: owner,
        body: {
          registrationId,
          attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: generateSymmetricKey() } },
          initialTwin: { properties: { desired: { interval: 5 } } },
        },
      });
      expect(enrolled.status).toBe(200);
      expect((await registerOverHttps(httpsPort, ca, server.connection.idScope, registrationId, key)).status).toBe(200);
    }
  });
  afterAll(async () => {
    await server?.stop();
    dir.remove();
  });

  it('lists the devices of a built-in hub with their twins, paged', async () => {
    const all = await call('GET', devices);
    expect(all.status).toBe(200);
    const twins = all.body as { deviceId: string; connectionState: string; properties: { desired: Record<string, unknown> } }[];
    expect(twins.map((twin) => twin.deviceId).sort()).toEqual(['hd-one', 'hd-two']);
    expect(twins[0]?.connectionState).toBe('Disconnected');
    expect(twins[0]?.properties.desired.interval).toBe(5);
    const first = await call('GET', `${devices}?top=1`);
    expect((first.body as unknown[]).length).toBe(1);
    const continuation = first.headers['x-ms-continuation'];
    expect(typeof continuation).toBe('string');
    const second = await call('GET', `${devices}?top=1&continuation=${encodeURIComponent(String(continuation))}`);
    expect((second.body as { deviceId: string }[])[0]?.deviceId).not.toBe((first.body as { deviceId: string }[])[0]?.deviceId);
    expect(second.headers['x-ms-continuation']).toBeUndefined();
  });

  it('reads a twin and patches its desired properties under its etag; a stale etag is 412', async () => {
    const read = await call('GET', `${devices}/hd-one/twin`);
    expect(read.status).toBe(200);
    const etag = read.headers.etag as string;
    const before = (read.body as { properties: { desired: { $version: number } } }).properties.desired.$version;
    const patched = await call('PATCH', `${devices}/hd-one/twin`, { body: { properties: { desired: { interval: 30, mode: 'eco' } } }, headers: { 'if-match': etag } });
    expect(patched.status).toBe(200);
    const desired = (patched.body as { properties: { desired: Record<string, unknown> } }).properties.desired;
    expect(desired).toMatchObject({ interval: 30, mode: 'eco', $version: before + 1 });
    // The hub's own registry holds the change (what a connecting device reads with its twin GET).
    expect((await server.hubs.get('hub-1')?.getDevice('hd-one'))?.twin.properties.desired).toMatchObject({ interval: 30, mode: 'eco' });
    expect(code(await call('PATCH', `${devices}/hd-one/twin`, { body: { properties: { desired: { interval: 1 } } }, headers: { 'if-match': etag } }))).toEqual([412, 412001]);
    // null deletes, as a JSON merge patch.
    const removed = await call('PATCH', `${devices}/hd-one/twin`, { body: { properties: { desired: { mode: null } } } });
    expect((removed.body as { properties: { desired: Record<string, unknown> } }).properties.desired.mode).toBeUndefined();
  });

  it('is the instance key’s own business: it may read its hub devices, another instance cannot', async () => {
    expect((await call('GET', devices, { as: owner })).status).toBe(200);
    const created = await call('POST', '/admin/instances', { body: { name: 'other' } });
    expect(created.status).toBe(201);
    const other = (created.body as { serviceConnectionString: string }).serviceConnectionString;
    expect(code(await call('GET', devices, { as: other }))).toEqual([404, 404208]);
  });

  it('refuses bad input with coded errors', async () => {
    expect(code(await call('GET', `${devices}/nobody/twin`))).toEqual([404, 404209]);
    expect(code(await call('GET', '/admin/instances/default/hubs/nowhere/devices'))).toEqual([404, 404207]);
    expect(code(await call('GET', `${devices}/hd-one`))).toEqual([404, 404001]);
    expect(code(await call('GET', `${devices}/hd-one/twin/more`))).toEqual([404, 404001]);
    expect(code(await call('POST', devices))).toEqual([405, 405001]);
    expect(code(await call('DELETE', `${devices}/hd-one/twin`))).toEqual([405, 405001]);
    expect(code(await call('GET', `${devices}?top=0`))).toEqual([400, 400002]);
    expect(code(await call('PATCH', `${devices}/hd-one/twin`, { rawBody: '{"properties":' }))).toEqual([400, 400001]);
    expect(code(await call('PATCH', `${devices}/hd-one/twin`, { body: [1] }))).toEqual([400, 400001]);
    expect(code(await call('PATCH', `${devices}/hd-one/twin`, { body: { properties: { desired: 'warm' } } }))).toEqual([400, 400002]);
    expect(code(await call('PATCH', `${devices}/hd-one/twin`, { body: { properties: { reported: { a: 1 } } } }))).toEqual([400, 400002]);
  });
});
