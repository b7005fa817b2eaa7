import { createServer, type AddressInfo } from 'node:net';
import { AzureIotHubConnector, parseHubConnectionString } from '@opendps/hub';
import { generateSymmetricKey, isDpsError } from '@opendps/model';
import { startHub, type HubFixture } from './helpers';
import { connectDevice, nextMessage } from './rest-helpers';

/** The IoT Hub REST connector against a real built-in hub (TLS, SQLite), then its devices over MQTT. */
describe('AzureIotHubConnector against the built-in hub', () => {
  let fixture: HubFixture;
  let connector: AzureIotHubConnector;

  beforeAll(async () => {
    fixture = await startHub();
    connector = new AzureIotHubConnector(fixture.hub.connectionString, { ca: fixture.root.certificatePem });
  });
  afterAll(async () => {
    connector.close();
    await fixture.close();
  });

  const sasIdentity = (deviceId: string, primaryKey = generateSymmetricKey()) => ({
    deviceId,
    authentication: { type: 'sas' as const, symmetricKey: { primaryKey, secondaryKey: generateSymmetricKey() } },
    status: 'enabled' as const,
    capabilities: { iotEdge: false },
  });

  it('creates a device with its twin, reads it back, and the device connects over MQTT on the same port', async () => {
    const identity = sasIdentity('conn-new');
    await connector.upsertDevice(identity, { tags: { fleet: 'a' }, desired: { interval: 10, nested: { x: 1 } } });
    const device = await connector.getDevice('conn-new');
    expect(device?.identity).toEqual(identity);
    expect(device?.twin.tags).toEqual({ fleet: 'a' });
    expect(device?.twin.properties.desired).toEqual({ interval: 10, nested: { x: 1 }, $version: 2 });
    expect(device?.twin.properties.reported).toEqual({ $version: 1 });
    expect(connector.hostName).toBe(fixture.hub.hostName);

    const client = await connectDevice(fixture, 'conn-new', identity.authentication.symmetricKey.primaryKey);
    await client.subscribeAsync('$iothub/twin/res/#', { qos: 0 });
    const answer = nextMessage(client, '$iothub/twin/res/200/');
    await client.publishAsync('$iothub/twin/GET/?$rid=1', '');
    expect(JSON.parse((await answer).payload.toString())).toMatchObject({ desired: { interval: 10, nested: { x: 1 } } });
    await client.endAsync(true);
  });

  it('replaces an existing identity and exactly the twin sections given (removed keys removed, reported untouched)', async () => {
    await connector.upsertDevice(sasIdentity('conn-existing'), { tags: { keep: 1, drop: 2 }, desired: { a: { b: 1, c: 2 }, gone: true } });
    await fixture.hub.registry.patchReported('conn-existing', { firmware: '1.0' });
    const rekeyed = { ...sasIdentity('conn-existing'), capabilities: { iotEdge: true } };
    await connector.upsertDevice(rekeyed, { tags: { keep: 1 }, desired: { a: { b: 1 } }, reported: { firmware: 'copied' } });
    const device = await fixture.hub.getDevice('conn-existing');
    expect(device?.identity).toEqual(rekeyed);
    expect(device?.twin.tags).toEqual({ keep: 1 });
    expect(device?.twin.properties.desired).toEqual({ a: { b: 1 }, $version: 3 });
    // Reported properties cannot be written through the service API; the device's own stay.
    expect(device?.twin.properties.reported).toEqual({ firmware: '1.0', $version: 2 });

    // Without twin sections only the identity changes.
    await connector.upsertDevice({ ...rekeyed, status: 'disabled' });
    expect((await fixture.hub.getDevice('conn-existing'))?.twin.tags).toEqual({ keep: 1 });
    expect((await connector.getDevice('conn-existing'))?.identity.status).toBe('disabled');
  });

  it('carries X.509 thumbprint identities', async () => {
    const identity = {
      deviceId: 'conn-x509',
      authentication: { type: 'selfSigned' as const, x509Thumbprint: { primaryThumbprint: 'AB'.repeat(20), secondaryThumbprint: 'CD'.repeat(32) } },
      status: 'enabled' as const,
      capabilities: { iotEdge: false },
    };
    await connector.upsertDevice(identity);
    expect((await connector.getDevice('conn-x509'))?.identity).toEqual(identity);
  });

  it('deletes a device; a missing one is deviceNotFound and getDevice says undefined', async () => {
    await connector.upsertDevice(sasIdentity('conn-delete'));
    await connector.deleteDevice('conn-delete');
    expect(await connector.getDevice('conn-delete')).toBeUndefined();
    expect(await fixture.hub.getDevice('conn-delete')).toBeUndefined();
    await expect(connector.deleteDevice('conn-delete')).rejects.toMatchObject({ status: 404, errorCode: 404209 });
  });

  it('maps a wrong key to deviceUnauthorizedAtHub and refused input to a coded error', async () => {
    const { hostName } = parseHubConnectionString(fixture.hub.connectionString);
    const wrong = new AzureIotHubConnector(`HostName=${hostName};SharedAccessKeyName=iothubowner;SharedAccessKey=${generateSymmetricKey()}`, {
      ca: fixture.root.certificatePem,
    });
    try {
      const refusal = await wrong.upsertDevice(sasIdentity('conn-wrong-key')).catch((error: unknown) => error);
      expect(isDpsError(refusal)).toBe(true);
      expect(refusal).toMatchObject({ status: 400, errorCode: 400209, message: expect.stringContaining('401 IotHubUnauthorizedAccess') });
      await expect(wrong.getDevice('conn-new')).rejects.toMatchObject({ errorCode: 400209 });
    } finally {
      wrong.close();
    }
    expect(await fixture.hub.getDevice('conn-wrong-key')).toBeUndefined();
    await expect(connector.upsertDevice(sasIdentity('conn-bad-twin'), { desired: { 'bad.key': 1 } })).rejects.toMatchObject({ errorCode: 400209 });
  });

  it('maps an unreachable hub, an untrusted certificate and a silent server to hubUnavailable', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', () => resolve()));
    const closedPort = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const key = generateSymmetricKey();
    const unreachable = new AzureIotHubConnector(`HostName=127.0.0.1:${closedPort};SharedAccessKeyName=iothubowner;SharedAccessKey=${key}`);
    await expect(unreachable.getDevice('x')).rejects.toMatchObject({ status: 503, errorCode: 503001 });
    unreachable.close();

    const untrusted = new AzureIotHubConnector(fixture.hub.connectionString);
    await expect(untrusted.upsertDevice(sasIdentity('conn-untrusted'))).rejects.toMatchObject({ errorCode: 503001 });
    untrusted.close();

    // Accepts TCP and never answers: the per-request timeout ends it.
    const silent = createServer((socket) => socket.on('error', () => undefined));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
    const silentPort = (silent.address() as AddressInfo).port;
    const waiting = new AzureIotHubConnector(`HostName=127.0.0.1:${silentPort};SharedAccessKeyName=iothubowner;SharedAccessKey=${key}`, {
      timeoutMs: 300,
    });
    const started = Date.now();
    await expect(waiting.deleteDevice('x')).rejects.toMatchObject({ errorCode: 503001, message: expect.stringContaining('300 ms') });
    expect(Date.now() - started).toBeLessThan(3000);
    waiting.close();
    silent.close();
  });

  it('refuses malformed connection strings with a coded error', () => {
    expect(() => new AzureIotHubConnector('HostName=hub.example.net;SharedAccessKeyName=x')).toThrow(expect.objectContaining({ errorCode: 400002 }));
    expect(() => new AzureIotHubConnector(`HostName=hub:99999;SharedAccessKeyName=x;SharedAccessKey=${generateSymmetricKey()}`)).toThrow(
      expect.objectContaining({ errorCode: 400002 }),
    );
    expect(() => new AzureIotHubConnector('HostName=hub.example.net;SharedAccessKeyName=x;SharedAccessKey=not-base64!')).toThrow(
      expect.objectContaining({ status: 400 }),
    );
    expect(parseHubConnectionString(`hostname=Hub.Azure-Devices.net;sharedaccesskeyname=iothubowner;sharedaccesskey=${'A'.repeat(43)}=`)).toMatchObject({
      hostName: 'Hub.Azure-Devices.net',
      host: 'Hub.Azure-Devices.net',
      port: undefined,
      keyName: 'iothubowner',
    });
  });
});
