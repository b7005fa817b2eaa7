import { createLeaf } from '@opendps/pki';
import { thumbprint } from '@opendps/model';
import { X509Certificate } from 'node:crypto';
import { Client, Message, type Twin } from 'azure-iot-device';
import { Mqtt } from 'azure-iot-device-mqtt';
import { addSasDevice, startHub, waitFor, type HubFixture } from './helpers';

/** Interop with the unmodified azure-iot-device + azure-iot-device-mqtt (docs/device-wire.md §7, §8). */
describe('built-in hub with the Azure IoT device SDK', () => {
  let fixture: HubFixture;
  const clients: Client[] = [];

  beforeAll(async () => {
    fixture = await startHub();
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close().catch(() => undefined)));
  });
  afterAll(async () => {
    await fixture.close();
  });

  async function sasClient(deviceId: string, key: string): Promise<Client> {
    const client = Client.fromConnectionString(`HostName=${fixture.hub.hostName};DeviceId=${deviceId};SharedAccessKey=${key}`, Mqtt);
    clients.push(client);
    await client.setOptions({ ca: fixture.root.certificatePem });
    return client;
  }

  function getTwin(client: Client): Promise<Twin> {
    return client.getTwin();
  }

  it('connects with a SAS key and reads its initial desired properties, without tags', async () => {
    const { primaryKey } = await addSasDevice(fixture.hub, 'sas-1', { desired: { interval: 30, mode: { a: 1 } }, tags: { site: 'lab' } });
    const client = await sasClient('sas-1', primaryKey);
    await client.open();
    expect(fixture.hub.connectedDevices()).toContain('sas-1');
    const twin = await getTwin(client);
    expect(twin.properties.desired).toMatchObject({ interval: 30, mode: { a: 1 }, $version: 1 });
    expect(JSON.stringify(twin.properties)).not.toContain('lab');
  });

  it('connects with the secondary key as well', async () => {
    const { secondaryKey } = await addSasDevice(fixture.hub, 'sas-2');
    const client = await sasClient('sas-2', secondaryKey);
    await client.open();
    expect(fixture.hub.connectedDevices()).toContain('sas-2');
  });

  it('refuses a wrong key and a disabled device', async () => {
    await addSasDevice(fixture.hub, 'sas-wrong');
    const wrong = await sasClient('sas-wrong', Buffer.alloc(32, 7).toString('base64'));
    await expect(wrong.open()).rejects.toMatchObject({ name: 'UnauthorizedError' });

    const { primaryKey } = await addSasDevice(fixture.hub, 'sas-disabled', { status: 'disabled' });
    const disabled = await sasClient('sas-disabled', primaryKey);
    await expect(disabled.open()).rejects.toMatchObject({ name: 'UnauthorizedError' });
    expect(fixture.hub.connectedDevices()).not.toContain('sas-disabled');
  });

  it('round-trips a reported patch into the registry', async () => {
    const { primaryKey } = await addSasDevice(fixture.hub, 'sas-reported');
    const client = await sasClient('sas-reported', primaryKey);
    await client.open();
    const twin = await getTwin(client);
    await new Promise<void>((resolve, reject) =>
      twin.properties.reported.update({ firmware: '1.2.3', battery: { level: 80 } }, (error?: Error) => (error ? reject(error) : resolve())),
    );
    const stored = await fixture.hub.getDevice('sas-reported');
    expect(stored?.twin.properties.reported).toEqual({ firmware: '1.2.3', battery: { level: 80 }, $version: 2 });
    const again = await getTwin(client);
    expect(again.properties.reported).toMatchObject({ firmware: '1.2.3', $version: 2 });
  });

  it('notifies the device of a desired patch', async () => {
    const { primaryKey } = await addSasDevice(fixture.hub, 'sas-desired', { desired: { interval: 10, old: true } });
    const client = await sasClient('sas-desired', primaryKey);
    await client.open();
    const twin = await getTwin(client);
    const seen: Array<Record<string, unknown>> = [];
    // The first event passes the SDK's live desired object, so keep copies.
    twin.on('properties.desired', (delta: Record<string, unknown>) => seen.push(JSON.parse(JSON.stringify(delta))));
    // The SDK emits the full desired first, then subscribes for patches; wait for the subscription.
    await waitFor(() => seen.length >= 1);
    await waitFor(async () => {
      await fixture.hub.updateDesired('sas-desired', { interval: 20, old: null });
      return seen.some((delta) => delta.interval === 20);
    });
    const patch = seen.find((delta) => delta.interval === 20);
    const stored = await fixture.hub.getDevice('sas-desired');
    // The loop may patch more than once before the subscription is in place; each patch bumps $version.
    expect(patch).toEqual({ interval: 20, old: null, $version: expect.any(Number) });
    expect(patch?.$version).toBeGreaterThanOrEqual(2);
    expect(patch?.$version).toBeLessThanOrEqual(stored?.twin.properties.desired.$version as number);
    expect(twin.properties.desired).toMatchObject({ interval: 20 });
    expect(twin.properties.desired).not.toHaveProperty('old');
    expect(stored?.twin.properties.desired).not.toHaveProperty('old');
  });

  it('PUBACKs and counts telemetry', async () => {
    const { primaryKey } = await addSasDevice(fixture.hub, 'sas-telemetry');
    const client = await sasClient('sas-telemetry', primaryKey);
    await client.open();
    const message = new Message(JSON.stringify({ temperature: 21.5 }));
    message.messageId = 'mid-1';
    message.properties.add('alert', 'yes please');
    await client.sendEvent(message);
    await client.sendEvent(new Message('second'));
    expect(fixture.hub.telemetryCount('sas-telemetry')).toBe(2);
    const [first] = fixture.hub.receivedMessages('sas-telemetry');
    expect(first?.properties).toMatchObject({ '$.mid': 'mid-1', alert: 'yes please' });
    expect(first?.payload.toString()).toBe('{"temperature":21.5}');
  });

  it('connects X.509 devices by SHA-256 (self-signed) and SHA-1 (CA-signed) thumbprint', async () => {
    const selfSigned = createLeaf(undefined, { commonName: 'x509-self' });
    const caSigned = createLeaf(fixture.root, { commonName: 'x509-ca' });
    const cases = [
      { deviceId: 'x509-self', issued: selfSigned, algorithm: 'sha256' as const },
      { deviceId: 'x509-ca', issued: caSigned, algorithm: 'sha1' as const },
    ];
    for (const { deviceId, issued, algorithm } of cases) {
      await fixture.hub.upsertDevice({
        deviceId,
        authentication: { type: 'selfSigned', x509Thumbprint: { primaryThumbprint: thumbprint(new X509Certificate(issued.certificatePem), algorithm) } },
        status: 'enabled',
        capabilities: { iotEdge: false },
      });
      const client = Client.fromConnectionString(`HostName=${fixture.hub.hostName};DeviceId=${deviceId};x509=true`, Mqtt);
      clients.push(client);
      await client.setOptions({ cert: issued.certificatePem, key: issued.privateKeyPem, ca: fixture.root.certificatePem });
      await client.open();
      await client.sendEvent(new Message('hello'));
      expect(fixture.hub.telemetryCount(deviceId)).toBe(1);
    }
    // A certificate with another thumbprint is refused.
    const stranger = createLeaf(undefined, { commonName: 'x509-self' });
    const client = Client.fromConnectionString(`HostName=${fixture.hub.hostName};DeviceId=x509-self;x509=true`, Mqtt);
    clients.push(client);
    await client.setOptions({ cert: stranger.certificatePem, key: stranger.privateKeyPem, ca: fixture.root.certificatePem });
    await expect(client.open()).rejects.toMatchObject({ name: 'UnauthorizedError' });
  });

  it('keeps devices, twins and its connection string across a restart on the same store', async () => {
    const { primaryKey } = await addSasDevice(fixture.hub, 'sas-restart', { desired: { keep: 'me' }, tags: { t: 1 } });
    await fixture.hub.upsertDevice(
      { deviceId: 'sas-restart', authentication: { type: 'sas', symmetricKey: { primaryKey, secondaryKey: primaryKey } }, status: 'enabled', capabilities: { iotEdge: true } },
    );
    await fixture.hub.registry.patchReported('sas-restart', { reportedBefore: true });
    const connectionString = fixture.hub.connectionString;
    expect(connectionString).toMatch(/^HostName=localhost:\d+;SharedAccessKeyName=iothubowner;SharedAccessKey=[A-Za-z0-9+/=]+$/);

    await fixture.restart();

    expect(fixture.hub.connectionString.split(';').slice(1)).toEqual(connectionString.split(';').slice(1));
    const device = await fixture.hub.getDevice('sas-restart');
    expect(device?.identity.capabilities.iotEdge).toBe(true);
    expect(device?.twin.tags).toEqual({ t: 1 });
    expect(device?.twin.properties.reported).toEqual({ reportedBefore: true, $version: 2 });
    const client = await sasClient('sas-restart', primaryKey);
    await client.open();
    expect((await getTwin(client)).properties.desired).toMatchObject({ keep: 'me' });
  });
});
