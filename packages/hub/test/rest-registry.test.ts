import { X509Certificate } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import type { Registry } from 'azure-iothub';
import { createLeaf } from '@opendps/pki';
import { startHub, waitFor, type HubFixture } from './helpers';
import { connectDevice, nextMessage, registryFor } from './rest-helpers';

/** The unmodified azure-iothub Registry against the built-in hub's REST API, on the device MQTT port. */
describe('built-in hub REST API with the azure-iothub Registry', () => {
  let fixture: HubFixture;
  let registry: Registry;
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    fixture = await startHub();
    registry = registryFor(fixture);
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.endAsync(true).catch(() => undefined)));
  });
  afterAll(async () => {
    await fixture.close();
  });

  it('creates a device with generated keys that then connects over MQTT on the same port', async () => {
    const { responseBody: created } = await registry.create({ deviceId: 'reg-create' });
    expect(created.deviceId).toBe('reg-create');
    expect(created.status).toBe('enabled');
    expect((created.authentication as { type?: string }).type).toBe('sas');
    const primaryKey = created.authentication?.symmetricKey?.primaryKey;
    expect(Buffer.from(primaryKey ?? '', 'base64').length).toBeGreaterThanOrEqual(16);
    expect(created.etag).toEqual(expect.any(String));
    expect(created.generationId).toEqual(expect.any(String));

    const { responseBody: read, httpResponse } = await registry.get('reg-create');
    expect(httpResponse.headers['content-type']).toMatch(/^application\/json/);
    expect(httpResponse.headers.etag).toBe(`"${created.etag}"`);
    expect(read.authentication?.symmetricKey?.primaryKey).toBe(primaryKey);
    expect(read.connectionState).toBe('Disconnected');

    clients.push(await connectDevice(fixture, 'reg-create', primaryKey!));
    expect((await registry.get('reg-create')).responseBody.connectionState).toBe('Connected');
  });

  it('refuses to create an existing device (409) and to update a missing one (404)', async () => {
    await registry.create({ deviceId: 'reg-dup' });
    await expect(registry.create({ deviceId: 'reg-dup' })).rejects.toMatchObject({ name: 'DeviceAlreadyExistsError' });
    await expect(registry.update({ deviceId: 'reg-missing', status: 'disabled' })).rejects.toMatchObject({ name: 'DeviceNotFoundError' });
    await expect(registry.get('reg-missing')).rejects.toMatchObject({ name: 'DeviceNotFoundError' });
  });

  it('updates a device (keys kept, new etag) and disconnects it when disabled', async () => {
    const { responseBody: created } = await registry.create({ deviceId: 'reg-update' });
    const key = created.authentication!.symmetricKey!.primaryKey!;
    const client = await connectDevice(fixture, 'reg-update', key);
    clients.push(client);
    const gone = new Promise<void>((resolve) => client.once('close', () => resolve()));
    const { responseBody: updated } = await registry.update({ deviceId: 'reg-update', status: 'disabled' });
    expect(updated.status).toBe('disabled');
    expect(updated.authentication?.symmetricKey?.primaryKey).toBe(key);
    expect(updated.etag).not.toBe(created.etag);
    await gone;
    expect((await fixture.hub.getDevice('reg-update'))?.identity.status).toBe('disabled');
  });

  it('creates an X.509 device by thumbprint', async () => {
    const leaf = createLeaf(undefined, { commonName: 'reg-x509' });
    const thumbprint = new X509Certificate(leaf.certificatePem).fingerprint.replace(/:/g, '').toLowerCase();
    const { responseBody } = await registry.create({ deviceId: 'reg-x509', authentication: { x509Thumbprint: { primaryThumbprint: thumbprint } } });
    expect((responseBody.authentication as { type?: string }).type).toBe('selfSigned');
    expect(responseBody.authentication?.x509Thumbprint?.primaryThumbprint).toBe(thumbprint.toUpperCase());
    const stored = await fixture.hub.getDevice('reg-x509');
    expect(stored?.identity.authentication).toEqual({ type: 'selfSigned', x509Thumbprint: { primaryThumbprint: thumbprint.toUpperCase() } });
  });

  it('deletes a device, then reports it missing', async () => {
    await registry.create({ deviceId: 'reg-delete' });
    await registry.delete('reg-delete');
    await expect(registry.get('reg-delete')).rejects.toMatchObject({ name: 'DeviceNotFoundError' });
    await expect(registry.delete('reg-delete')).rejects.toMatchObject({ name: 'DeviceNotFoundError' });
    expect(await fixture.hub.getDevice('reg-delete')).toBeUndefined();
  });

  it('reads and patches the twin (tags and desired), notifying the connected device, and refuses a stale etag', async () => {
    const { responseBody: created } = await registry.create({ deviceId: 'reg-twin' });
    const client = await connectDevice(fixture, 'reg-twin', created.authentication!.symmetricKey!.primaryKey!);
    clients.push(client);
    await client.subscribeAsync('$iothub/twin/PATCH/properties/desired/#', { qos: 0 });

    const { responseBody: twin } = await registry.getTwin('reg-twin');
    expect(twin.deviceId).toBe('reg-twin');
    expect(twin.tags).toEqual({});
    expect(twin.properties.desired.$version).toBe(1);
    const firstEtag = twin.etag;

    const notified = nextMessage(client, '$iothub/twin/PATCH/properties/desired/');
    const { result: patched } = await twin.update({ tags: { site: 'lab' }, properties: { desired: { interval: 30 } } });
    expect(patched.tags).toEqual({ site: 'lab' });
    expect(patched.properties.desired).toMatchObject({ interval: 30, $version: 2 });
    expect(patched.etag).not.toBe(firstEtag);
    const message = await notified;
    expect(message.topic).toBe('$iothub/twin/PATCH/properties/desired/?$version=2');
    expect(JSON.parse(message.payload.toString())).toEqual({ interval: 30, $version: 2 });

    await expect(registry.updateTwin('reg-twin', { tags: { site: 'elsewhere' } }, firstEtag)).rejects.toMatchObject({ name: 'InvalidEtagError' });
    const { responseBody: merged } = await registry.updateTwin('reg-twin', { tags: { site: null, floor: 2 }, properties: { desired: {} } }, '*');
    expect(merged.tags).toEqual({ floor: 2 });
    expect((await fixture.hub.getDevice('reg-twin'))?.twin.properties.desired).toEqual({ interval: 30, $version: 3 });
  });

  it('lists devices and pages a query with continuation tokens', async () => {
    for (const id of ['reg-q1', 'reg-q2', 'reg-q3']) await registry.create({ deviceId: id });
    const { responseBody: listed } = await registry.list();
    expect(listed.map((device) => device.deviceId)).toEqual(expect.arrayContaining(['reg-q1', 'reg-q2', 'reg-q3']));

    const total = await fixture.hub.registry.count();
    const query = registry.createQuery('SELECT * FROM devices', 2);
    const seen: string[] = [];
    let pages = 0;
    while (query.hasMoreResults) {
      const { result } = await query.nextAsTwin(query.continuationToken);
      expect(result.length).toBeLessThanOrEqual(2);
      seen.push(...result.map((twin) => twin.deviceId));
      pages += 1;
    }
    expect(seen).toHaveLength(total);
    expect(pages).toBe(Math.ceil(total / 2));
    await expect(registry.createQuery("SELECT * FROM devices WHERE tags.site = 'lab'").next()).rejects.toMatchObject({ name: 'ArgumentError' });
  });

  it('refuses a wrong key or another policy name with 401 IotHubUnauthorizedAccess', async () => {
    const wrongKey = Buffer.alloc(32, 7).toString('base64');
    await expect(registryFor(fixture, wrongKey).get('reg-create')).rejects.toMatchObject({
      name: 'UnauthorizedError',
      response: { statusCode: 401 },
    });
    const refusal = await registryFor(fixture, fixture.hub.accessPolicy.primaryKey, 'registryRead')
      .get('reg-create')
      .catch((error: { name: string; responseBody: string }) => error);
    expect(refusal).toMatchObject({ name: 'UnauthorizedError' });
    expect(JSON.parse((refusal as { responseBody: string }).responseBody).Message).toMatch(/^ErrorCode:IotHubUnauthorizedAccess;/);
    // The secondary key works as well as the primary.
    await expect(registryFor(fixture, fixture.hub.accessPolicy.secondaryKey).get('reg-create')).resolves.toBeDefined();
  });

  it('keeps devices in the store across a restart (the REST API reads the same registry)', async () => {
    await registry.create({ deviceId: 'reg-durable' });
    await fixture.restart();
    registry = registryFor(fixture);
    await waitFor(async () => (await registry.get('reg-durable').catch(() => undefined)) !== undefined);
    expect((await registry.get('reg-durable')).responseBody.deviceId).toBe('reg-durable');
  });
});
