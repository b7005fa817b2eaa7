import { readFileSync } from 'node:fs';
import { silentLogger } from '@opendps/model';
import { createServer, type RunningServer } from '../src';
import { httpsCall, portOf, serviceSas, tlsAccepts } from './admin-support';
import { tempDir } from './support';

/** Hub addresses across restarts and re-links (docs/architecture.md "Hub addresses"). */
describe('built-in hub addresses', () => {
  const dir = tempDir();
  let server: RunningServer | undefined;
  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });
  afterAll(() => dir.remove());

  const start = (ports: { hub?: number } = { hub: 0 }) =>
    createServer({ dataDir: dir.path, ports: { https: 0, mqtt: 0, amqp: 0, ...ports }, logger: silentLogger, instanceRefreshMs: 100 });

  it('a hub on a free port takes the same port again after a restart, so its published address still holds', async () => {
    server = await start();
    const before = server.hubs.get('hub-1')?.hostName;
    expect(before).toMatch(/^localhost:\d+$/);
    await server.stop();
    server = await start();
    expect(server.hubs.get('hub-1')?.hostName).toBe(before);
    expect(server.instances()[0]?.linkedHubs[0]?.hostName).toBe(before);
  });

  it('without a hub port the default hub moves onto the device listeners under --host, and back with one', async () => {
    server = await start({});
    const mqttPort = portOf(server.endpoints.mqtt ?? '');
    expect(server.hubs.get('hub-1')?.onDeviceListeners).toBe(true);
    expect(server.instances()[0]?.linkedHubs[0]).toMatchObject({ hostName: `localhost:${mqttPort}`, builtin: { hostName: 'localhost' } });
    await server.stop();
    server = await start({ hub: 0 });
    expect(server.hubs.get('hub-1')?.onDeviceListeners).toBe(false);
    expect(server.instances()[0]?.linkedHubs[0]?.builtin).toEqual({ port: 0 });
  });

  it('re-linking a hub under another address starts it there: from its own port to the device listeners', async () => {
    server = await start();
    const ca = readFileSync(server.caFile, 'utf8');
    const httpsPort = portOf(server.endpoints.https);
    const put = (body: unknown) =>
      httpsCall({ port: httpsPort, ca, method: 'PUT', path: '/admin/instances/default/hubs/moving', authorization: serviceSas(server?.connection.adminConnectionString ?? ''), body });
    const own = await put({ builtin: true });
    expect(own.status).toBe(201);
    const ownHostName = (own.body as { hostName: string }).hostName;
    expect(await tlsAccepts(portOf(ownHostName), ca)).toBe(true);

    const moved = await put({ builtin: { hostName: 'moving.localhost' } });
    expect(moved.status).toBe(200);
    expect(moved.body).toMatchObject({ hostName: `moving.localhost:${portOf(server.endpoints.mqtt ?? '')}`, builtin: { hostName: 'moving.localhost' } });
    expect(server.hubs.get('moving')?.onDeviceListeners).toBe(true);
    expect(await tlsAccepts(portOf(ownHostName), ca)).toBe(false);
  });
});
