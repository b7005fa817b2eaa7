import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BuiltInHub } from '@opendps/hub';
import { generateSymmetricKey } from '@opendps/model';
import { SqliteStore } from '@opendps/store';
import { ensureDevPki, type ConnectionInfo, type RunningServer } from '../src';
import { deviceSas, httpsCall, portOf, registerOverHttps, startAdminServer, tlsAccepts, type AdminCall, type HttpsAnswer } from './admin-support';
import { tempDir } from './support';

/**
 * The admin API over real HTTPS against an in-process server (every port 0): hubs linked and
 * unlinked at run time, instances added and isolated, coded refusals, per-instance quotas.
 */
describe('admin API', () => {
  const dir = tempDir();
  const remoteDir = tempDir();
  let server: RunningServer;
  let ca: string;
  let httpsPort: number;
  let admin: string;
  let owner: string;
  let call: AdminCall;
  let remote: BuiltInHub;
  let remoteStore: SqliteStore;

  beforeAll(async () => {
    ({ server, ca, httpsPort, admin, owner, call } = await startAdminServer(dir.path));
    // "Another running built-in hub", reached only through its connection string: its own store,
    // a certificate from the same development CA.
    const pki = ensureDevPki(dir.path, 'localhost');
    remoteStore = new SqliteStore(join(remoteDir.path, 'remote.db'));
    remote = new BuiltInHub({ name: 'remote', host: 'localhost', port: 0, tls: { cert: pki.server.certificatePem, key: pki.server.privateKeyPem }, store: remoteStore });
    await remote.start();
  });
  afterAll(async () => {
    await server?.stop();
    await remote?.stop();
    await remoteStore?.close();
    dir.remove();
    remoteDir.remove();
  });

  const connectionFile = (): ConnectionInfo & { adminConnectionString: string } =>
    JSON.parse(readFileSync(join(dir.path, 'connection.json'), 'utf8')) as ConnectionInfo & { adminConnectionString: string };
  const enroll = async (as: string, registrationId: string, iotHubs: string[]): Promise<string> => {
    const key = generateSymmetricKey();
    const answer = await call('PUT', `/enrollments/${registrationId}?api-version=2021-10-01`, {
      as,
      body: { registrationId, attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: generateSymmetricKey() } }, iotHubs },
    });
    expect(answer.status).toBe(200);
    return key;
  };
  const assignedHub = (answer: HttpsAnswer): string | undefined =>
    (answer.body as { registrationState?: { assignedHub?: string } }).registrationState?.assignedHub;

  it('links a second built-in hub at run time: it listens, connection.json lists it, a device lands there; unlinked, it stops', async () => {
    const linked = await call('PUT', '/admin/instances/default/hubs/hub-2', { body: { builtin: true, allocationWeight: 3, location: 'westeurope' } });
    expect(linked.status).toBe(201);
    const hub = linked.body as { hostName: string; listening: boolean; connectionString: string; allocationWeight: number; location: string };
    expect(hub).toMatchObject({ name: 'hub-2', kind: 'builtin', listening: true, allocationWeight: 3, applyAllocationPolicy: true, location: 'westeurope' });
    expect(hub.hostName).toMatch(/^localhost:\d+$/);
    const hub1 = server.instances()[0]?.linkedHubs.find((candidate) => candidate.name === 'hub-1')?.hostName;
    expect(hub.hostName).not.toBe(hub1);
    expect(hub.connectionString).toContain(`HostName=${hub.hostName};SharedAccessKeyName=iothubowner;`);
    expect(await tlsAccepts(portOf(hub.hostName), ca)).toBe(true);

    // connection.json was rewritten before the answer.
    const file = connectionFile();
    expect(file.endpoints.hubs).toContain(hub.hostName);
    expect(file.instances[0]?.linkedHubs).toContainEqual({ name: 'hub-2', hostName: hub.hostName, connectionString: hub.connectionString, allocationWeight: 3 });
    expect(server.endpoints.hubs).toContain(hub.hostName);

    // The next registration may land there: no restart.
    const key = await enroll(owner, 'on-hub-2', [hub.hostName]);
    const registered = await registerOverHttps(httpsPort, ca, server.connection.idScope, 'on-hub-2', key);
    expect(registered.status).toBe(200);
    expect(registered.body).toMatchObject({ status: 'assigned' });
    expect(assignedHub(registered)).toBe(hub.hostName);
    expect(await server.hubs.get('hub-2')?.getDevice('on-hub-2')).toBeDefined();

    // Replacing the link keeps its address.
    const replaced = await call('PUT', '/admin/instances/default/hubs/HUB-2', { body: { builtin: true, applyAllocationPolicy: false } });
    expect(replaced.status).toBe(200);
    expect(replaced.body).toMatchObject({ hostName: hub.hostName, allocationWeight: 1, applyAllocationPolicy: false });

    const listed = await call('GET', '/admin/instances/default/hubs');
    expect((listed.body as Array<{ name: string }>).map((entry) => entry.name)).toEqual(['hub-1', 'hub-2']);

    const unlinked = await call('DELETE', '/admin/instances/default/hubs/hub-2');
    expect(unlinked.status).toBe(204);
    expect(await tlsAccepts(portOf(hub.hostName), ca)).toBe(false);
    expect(server.hubs.has('hub-2')).toBe(false);
    expect(connectionFile().endpoints.hubs).not.toContain(hub.hostName);
    expect(connectionFile().instances[0]?.linkedHubs.map((entry) => entry.name)).toEqual(['hub-1']);
    const gone = await call('GET', '/admin/instances/default/hubs/hub-2');
    expect([gone.status, (gone.body as { errorCode: number }).errorCode]).toEqual([404, 404207]);
    // A device naming the unlinked hub is refused a hub now.
    const orphan = await registerOverHttps(httpsPort, ca, server.connection.idScope, 'on-hub-2', key);
    expect(orphan.body).toMatchObject({ status: 'failed' });
  });

  it('links a hub by connection string (the Azure connector) and provisions a device into it', async () => {
    const refusedKey = remote.connectionString.replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${generateSymmetricKey()}`);
    const refused = await call('PUT', '/admin/instances/default/hubs/remote', { body: { connectionString: refusedKey } });
    expect([refused.status, (refused.body as { errorCode: number }).errorCode]).toEqual([503, 503001]);
    expect(server.instances()[0]?.linkedHubs.some((hub) => hub.name === 'remote')).toBe(false);

    const linked = await call('PUT', '/admin/instances/default/hubs/remote', { body: { connectionString: remote.connectionString, allocationWeight: 2 } });
    expect(linked.status).toBe(201);
    expect(linked.body).toMatchObject({ name: 'remote', kind: 'connectionString', hostName: remote.hostName, connectionString: remote.connectionString });
    expect(connectionFile().instances[0]?.linkedHubs).toContainEqual({ name: 'remote', hostName: remote.hostName, connectionString: remote.connectionString, allocationWeight: 2 });

    const key = await enroll(owner, 'to-remote', [remote.hostName]);
    const registered = await registerOverHttps(httpsPort, ca, server.connection.idScope, 'to-remote', key);
    expect(registered.body).toMatchObject({ status: 'assigned' });
    expect(assignedHub(registered)).toBe(remote.hostName);
    const device = await remote.getDevice('to-remote');
    expect(device?.identity.authentication).toMatchObject({ type: 'sas', symmetricKey: { primaryKey: expect.any(String) } });
    expect(await server.hubs.get('hub-1')?.getDevice('to-remote')).toBeUndefined();

    expect((await call('DELETE', '/admin/instances/default/hubs/remote')).status).toBe(204);
  });

  it('adds an instance with its own ID scope and keys, isolated from the first', async () => {
    const created = await call('POST', '/admin/instances', { body: { name: 'second', allocationPolicy: 'hashed' } });
    expect(created.status).toBe(201);
    const second = created.body as { idScope: string; serviceConnectionString: string; linkedHubs: unknown[] };
    expect(second.idScope).toMatch(/^0ne[0-9A-F]{8}$/);
    expect(second.idScope).not.toBe(server.connection.idScope);
    expect(second.linkedHubs).toEqual([]);
    expect(second.serviceConnectionString).not.toBe(owner);
    const file = connectionFile();
    expect(file.instances.map((instance) => instance.name)).toEqual(['default', 'second']);
    expect(file.instances[1]).toMatchObject({ idScope: second.idScope, serviceConnectionString: second.serviceConnectionString });
    expect(file.idScope).toBe(server.connection.idScope);

    // Its key works on its own data, and never reads the first instance's.
    await enroll(owner, 'first-only', []);
    const own = second.serviceConnectionString;
    const foreign = await call('GET', '/enrollments/first-only?api-version=2021-10-01', { as: own });
    expect(foreign.status).toBe(404);
    expect((await call('GET', '/enrollments/first-only?api-version=2021-10-01', { as: owner })).status).toBe(200);
    const foreignAdmin = await call('GET', '/admin/instances/default/hubs', { as: own });
    expect([foreignAdmin.status, (foreignAdmin.body as { errorCode: number }).errorCode]).toEqual([404, 404208]);
    const listedByInstance = await call('GET', '/admin/instances', { as: own });
    expect((listedByInstance.body as Array<{ name: string }>).map((instance) => instance.name)).toEqual(['second']);
    expect((listedByInstance.body as Array<Record<string, unknown>>)[0]).not.toHaveProperty('serviceConnectionString');
    // Only the deployment admin creates or removes instances.
    const notAdmin = await call('POST', '/admin/instances', { as: own, body: { name: 'third' } });
    expect([notAdmin.status, (notAdmin.body as { errorCode: number }).errorCode]).toEqual([401, 401004]);
    expect((await call('DELETE', '/admin/instances/default', { as: own })).status).toBe(401);
    // Its own key links its own hubs (a built-in hub shared with the first instance, by name).
    const shared = await call('PUT', '/admin/instances/second/hubs/hub-1', { as: own, body: { builtin: true } });
    expect(shared.status).toBe(201);
    expect((shared.body as { hostName: string }).hostName).toBe(server.instances()[0]?.linkedHubs[0]?.hostName);
  });

  it('throttles an instance over its quota with 429 and retry-after while another keeps registering', async () => {
    const quota = await call('PATCH', '/admin/instances/second', { body: { quotas: { registrationsPerSecond: 1 } } });
    expect(quota.status).toBe(200);
    expect(quota.body).toMatchObject({ quotas: { registrationsPerSecond: 1, pollsPerSecond: 5000 } });
    const second = connectionFile().instances.find((instance) => instance.name === 'second');
    if (!second) throw new Error('second instance missing from connection.json');
    const hub1 = server.instances()[0]?.linkedHubs[0]?.hostName ?? '';

    const keys = await Promise.all(['q-0', 'q-1', 'q-2'].map((id) => enroll(second.serviceConnectionString, id, [hub1])));
    const register = (id: string, key: string) =>
      httpsCall({
        port: httpsPort,
        ca,
        method: 'PUT',
        path: `/${second.idScope}/registrations/${id}/register?api-version=2021-06-01`,
        authorization: deviceSas(second.idScope, id, key),
        body: { registrationId: id },
      });
    const answers = await Promise.all(['q-0', 'q-1', 'q-2'].map((id, i) => register(id, keys[i] ?? '')));
    const throttled = answers.filter((answer) => answer.status === 429);
    // Three at once against one per second: at least one refused (two if they share a window).
    expect(throttled.length).toBeGreaterThanOrEqual(1);
    expect(throttled[0]?.body).toMatchObject({ errorCode: 429001, info: { 'retry-after': '1' } });

    // Meanwhile the first instance registers devices back to back.
    for (let i = 0; i < 5; i++) {
      const key = await enroll(owner, `unthrottled-${i}`, []);
      const answer = await registerOverHttps(httpsPort, ca, server.connection.idScope, `unthrottled-${i}`, key);
      expect(answer.body).toMatchObject({ status: 'assigned' });
    }
  });

  it('links hubs on the device listeners by host name; a host name taken by another such hub is refused and not linked', async () => {
    const first = await call('PUT', '/admin/instances/default/hubs/by-name', { body: { builtin: { hostName: 'by-name.localhost' } } });
    expect(first.status).toBe(201);
    const mqttPort = portOf(server.endpoints.mqtt ?? '');
    expect(first.body).toMatchObject({ hostName: `by-name.localhost:${mqttPort}`, builtin: { hostName: 'by-name.localhost' }, listening: true });
    expect(server.hubs.get('by-name')?.onDeviceListeners).toBe(true);
    const taken = await call('PUT', '/admin/instances/default/hubs/same-name', { body: { builtin: { hostName: 'BY-NAME.localhost' } } });
    expect([taken.status, (taken.body as { errorCode?: number }).errorCode]).toEqual([503, 503001]);
    expect(server.instances()[0]?.linkedHubs.map((hub) => hub.name)).not.toContain('same-name');
    expect((await call('DELETE', '/admin/instances/default/hubs/by-name')).status).toBe(204);
  });

  it('refuses bad input with coded errors', async () => {
    const code = (answer: HttpsAnswer): [number, number | undefined] => [answer.status, (answer.body as { errorCode?: number } | undefined)?.errorCode];
    const put = (body: unknown) => call('PUT', '/admin/instances/default/hubs/hub-x', { body });
    expect(code(await put({ builtin: true, connectionString: remote.connectionString }))).toEqual([400, 400002]);
    expect(code(await put({}))).toEqual([400, 400002]);
    expect(code(await put({ builtin: true, allocationWeight: 0 }))).toEqual([400, 400002]);
    expect(code(await put({ builtin: true, allocationWeight: 1001 }))).toEqual([400, 400002]);
    expect(code(await put({ builtin: { port: 70000 } }))).toEqual([400, 400002]);
    expect(code(await put({ builtin: { hostName: 'hub:8883' } }))).toEqual([400, 400002]);
    expect(code(await put({ builtin: { hostName: 'no spaces.example' } }))).toEqual([400, 400002]);
    expect(code(await put({ builtin: true, colour: 'blue' }))).toEqual([400, 400002]);
    expect(code(await put({ connectionString: 'HostName=x' }))).toEqual([400, 400002]);
    expect(code(await call('PUT', '/admin/instances/default/hubs/hub-x', { rawBody: '{"builtin":' }))).toEqual([400, 400001]);
    expect(code(await call('PUT', '/admin/instances/default/hubs/bad%20name', { body: { builtin: true } }))).toEqual([400, 400002]);
    expect(code(await call('PUT', '/admin/instances/nobody/hubs/hub-x', { body: { builtin: true } }))).toEqual([404, 404208]);
    expect(code(await call('DELETE', '/admin/instances/default/hubs/never-linked'))).toEqual([404, 404207]);
    expect(code(await call('POST', '/admin/instances', { body: { name: 'bad', idScope: 'nope' } }))).toEqual([400, 400002]);
    expect(code(await call('POST', '/admin/instances', { body: { name: 'bad', allocationPolicy: 'custom' } }))).toEqual([400, 400012]);
    expect(code(await call('POST', '/admin/instances', { body: { name: 'second' } }))).toEqual([409, 409001]);
    expect(code(await call('POST', '/admin/instances', { body: { name: 'third', idScope: server.connection.idScope } }))).toEqual([409, 409001]);
    expect(code(await call('PATCH', '/admin/instances/second', { body: { quotas: { registrationsPerSecond: 0 } } }))).toEqual([400, 400002]);
    expect(code(await call('POST', '/admin/instances/second'))).toEqual([405, 405001]);
    expect(code(await httpsCall({ port: httpsPort, ca, method: 'GET', path: '/admin/instances' }))).toEqual([401, 401000]);
    const wrongKey = admin.replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${generateSymmetricKey()}`);
    expect(code(await call('GET', '/admin/instances', { as: wrongKey }))).toEqual([401, 401002]);
    // The service API and the device API still own their paths.
    expect((await call('GET', '/enrollments/first-only?api-version=2021-10-01', { as: owner })).status).toBe(200);
  });

  it('links at most 50 hubs to an instance', async () => {
    const third = await call('POST', '/admin/instances', { body: { name: 'third' } });
    expect(third.status).toBe(201);
    for (let i = 0; i < 50; i++) {
      const answer = await call('PUT', `/admin/instances/third/hubs/h${i}`, { body: { connectionString: remote.connectionString } });
      expect(answer.status).toBe(201);
    }
    const over = await call('PUT', '/admin/instances/third/hubs/h50', { body: { connectionString: remote.connectionString } });
    expect([over.status, (over.body as { errorCode: number }).errorCode]).toEqual([400, 400002]);
    // Removing instances: any but the last.
    expect((await call('DELETE', '/admin/instances/third')).status).toBe(204);
    expect(connectionFile().instances.map((instance) => instance.name)).toEqual(['default', 'second']);
    expect((await call('DELETE', '/admin/instances/second')).status).toBe(204);
    const last = await call('DELETE', '/admin/instances/default');
    expect([last.status, (last.body as { errorCode: number }).errorCode]).toEqual([409, 409001]);
  });
});
