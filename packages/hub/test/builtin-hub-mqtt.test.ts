import { connect as tlsConnect } from 'node:tls';
import mqtt, { type MqttClient } from 'mqtt';
import { addSasDevice, deviceToken, deviceUsername, startHub, waitFor, type HubFixture } from './helpers';

/** Raw MQTT 3.1.1 against the hub: authorization, isolation between devices, malformed input. */
describe('built-in hub device MQTT (raw client)', () => {
  let fixture: HubFixture;
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    fixture = await startHub();
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.endAsync(true).catch(() => undefined)));
  });
  afterAll(async () => {
    await fixture.close();
  });

  async function connectDevice(deviceId: string, key: string, extra: { password?: string; clientId?: string } = {}): Promise<MqttClient> {
    const client = mqtt.connect({
      protocol: 'mqtts',
      host: 'localhost',
      port: fixture.hub.port,
      ca: fixture.root.certificatePem,
      clientId: extra.clientId ?? deviceId,
      username: deviceUsername(fixture.hub, deviceId),
      password: extra.password ?? deviceToken(fixture.hub, deviceId, key),
      protocolVersion: 4,
      clean: false,
      reconnectPeriod: 0,
    });
    clients.push(client);
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    return client;
  }

  function closed(client: MqttClient): Promise<void> {
    return new Promise((resolve) => (client.connected ? client.once('close', () => resolve()) : resolve()));
  }

  function nextMessage(client: MqttClient, prefix: string): Promise<{ topic: string; payload: Buffer }> {
    return new Promise((resolve) => {
      const onMessage = (topic: string, payload: Buffer): void => {
        if (!topic.startsWith(prefix)) return;
        client.off('message', onMessage);
        resolve({ topic, payload });
      };
      client.on('message', onMessage);
    });
  }

  it('answers CONNECT with 4 for a wrong key or unknown device, 5 for a disabled one, 2 for a mismatched clientId', async () => {
    const { primaryKey } = await addSasDevice(fixture.hub, 'raw-auth');
    const { primaryKey: disabledKey } = await addSasDevice(fixture.hub, 'raw-disabled', { status: 'disabled' });
    const wrongKey = Buffer.alloc(32, 1).toString('base64');
    await expect(connectDevice('raw-auth', wrongKey)).rejects.toMatchObject({ code: 4 });
    await expect(connectDevice('raw-unknown', wrongKey)).rejects.toMatchObject({ code: 4 });
    await expect(connectDevice('raw-disabled', disabledKey)).rejects.toMatchObject({ code: 5 });
    await expect(connectDevice('raw-auth', primaryKey, { clientId: 'someone-else' })).rejects.toMatchObject({ code: 2 });
    const expired = deviceToken(fixture.hub, 'raw-auth', primaryKey, Math.floor(Date.now() / 1000) - 3600);
    await expect(connectDevice('raw-auth', primaryKey, { password: expired })).rejects.toMatchObject({ code: 4 });
    await expect(connectDevice('raw-auth', primaryKey)).resolves.toBeDefined();
  });

  it('grants only the device its own topics and refuses another device topic (SUBACK 0x80)', async () => {
    const { primaryKey } = await addSasDevice(fixture.hub, 'raw-sub');
    const client = await connectDevice('raw-sub', primaryKey);
    // mqtt.js rejects a SUBACK holding a failure code, and hands over the packet.
    const refusal = await client
      .subscribeAsync({
      'devices/raw-sub/messages/devicebound/#': { qos: 1 },
      '$iothub/twin/res/#': { qos: 2 },
      'devices/raw-other/messages/devicebound/#': { qos: 1 },
        '#': { qos: 0 },
      })
      .then(() => undefined, (error: { packet?: { granted?: number[] } }) => error);
    expect(refusal?.packet?.granted).toEqual([1, 1, 128, 128]);
    expect(client.connected).toBe(true);
  });

  it('closes the connection of a device publishing to a forbidden topic or as another device', async () => {
    const { primaryKey } = await addSasDevice(fixture.hub, 'raw-pub');
    await addSasDevice(fixture.hub, 'raw-victim');
    for (const topic of ['devices/raw-victim/messages/events/', 'some/random/topic', '$iothub/twin/res/200/?$rid=1']) {
      const client = await connectDevice('raw-pub', primaryKey);
      const gone = closed(client);
      client.publish(topic, 'x', { qos: 1 });
      await gone;
    }
    expect(fixture.hub.telemetryCount('raw-victim')).toBe(0);
    expect(fixture.hub.telemetryCount('raw-pub')).toBe(0);
  });

  it('answers a garbage reported patch with 400 and keeps the connection serving', async () => {
    const { primaryKey } = await addSasDevice(fixture.hub, 'raw-garbage', { desired: { a: 1 } });
    const client = await connectDevice('raw-garbage', primaryKey);
    await client.subscribeAsync('$iothub/twin/res/#', { qos: 0 });

    const bad = nextMessage(client, '$iothub/twin/res/');
    client.publish('$iothub/twin/PATCH/properties/reported/?$rid=r1', Buffer.from([0xff, 0x00, 0x7b]));
    const badAnswer = await bad;
    expect(badAnswer.topic).toBe('$iothub/twin/res/400/?$rid=r1');
    expect(JSON.parse(badAnswer.payload.toString())).toMatchObject({ errorCode: 400001 });

    const notObject = nextMessage(client, '$iothub/twin/res/');
    client.publish('$iothub/twin/PATCH/properties/reported/?$rid=r2', '[1,2]');
    expect((await notObject).topic).toBe('$iothub/twin/res/400/?$rid=r2');

    const patched = nextMessage(client, '$iothub/twin/res/');
    client.publish('$iothub/twin/PATCH/properties/reported/?$rid=r3', '{"ok":true}');
    const patchAnswer = await patched;
    expect(patchAnswer.topic).toBe('$iothub/twin/res/204/?$rid=r3&$version=2');
    expect(patchAnswer.payload.length).toBe(0);

    const got = nextMessage(client, '$iothub/twin/res/');
    client.publish('$iothub/twin/GET/?$rid=r4', ' ');
    const twinAnswer = await got;
    expect(twinAnswer.topic).toBe('$iothub/twin/res/200/?$rid=r4');
    expect(JSON.parse(twinAnswer.payload.toString())).toEqual({ desired: { a: 1, $version: 1 }, reported: { ok: true, $version: 2 } });
  });

  it('sends twin responses only to the requesting device', async () => {
    const { primaryKey: keyA } = await addSasDevice(fixture.hub, 'raw-a');
    const { primaryKey: keyB } = await addSasDevice(fixture.hub, 'raw-b');
    const a = await connectDevice('raw-a', keyA);
    const b = await connectDevice('raw-b', keyB);
    await a.subscribeAsync('$iothub/twin/res/#');
    await b.subscribeAsync('$iothub/twin/res/#');
    const seenByB: string[] = [];
    b.on('message', (topic) => seenByB.push(topic));
    const answer = nextMessage(a, '$iothub/twin/res/');
    a.publish('$iothub/twin/GET/?$rid=only-a', ' ');
    expect((await answer).topic).toBe('$iothub/twin/res/200/?$rid=only-a');
    // b's own request is answered after a's, so anything for a would have reached b by now.
    const bAnswer = nextMessage(b, '$iothub/twin/res/');
    b.publish('$iothub/twin/GET/?$rid=only-b', ' ');
    await bAnswer;
    expect(seenByB).toEqual(['$iothub/twin/res/200/?$rid=only-b']);
  });

  it('kicks the older connection when the same device connects again', async () => {
    const { primaryKey } = await addSasDevice(fixture.hub, 'raw-dup');
    const first = await connectDevice('raw-dup', primaryKey);
    const firstGone = closed(first);
    const second = await connectDevice('raw-dup', primaryKey);
    await firstGone;
    expect(second.connected).toBe(true);
    expect(fixture.hub.connectedDevices().filter((id) => id === 'raw-dup')).toHaveLength(1);
  });

  it('disconnects a device when it is deleted or disabled', async () => {
    const { primaryKey } = await addSasDevice(fixture.hub, 'raw-delete');
    const client = await connectDevice('raw-delete', primaryKey);
    const gone = closed(client);
    await fixture.hub.deleteDevice('raw-delete');
    await gone;
    await waitFor(() => !fixture.hub.connectedDevices().includes('raw-delete'));
    expect(await fixture.hub.getDevice('raw-delete')).toBeUndefined();

    const { primaryKey: key } = await addSasDevice(fixture.hub, 'raw-disable');
    const disabled = await connectDevice('raw-disable', key);
    const disabledGone = closed(disabled);
    const identity = (await fixture.hub.getDevice('raw-disable'))?.identity;
    await fixture.hub.upsertDevice({ ...identity!, status: 'disabled' });
    await disabledGone;
    await expect(connectDevice('raw-disable', key)).rejects.toMatchObject({ code: 5 });
  });

  it('survives malformed and oversized packets on raw TLS and keeps serving other clients', async () => {
    const { primaryKey } = await addSasDevice(fixture.hub, 'raw-survivor');
    const survivor = await connectDevice('raw-survivor', primaryKey);
    const garbage = [
      Buffer.from([0x10, 0x04, 0x00, 0x02, 0x41, 0x42]), // CONNECT with a truncated, bogus protocol name
      Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x7f]), // five length bytes
      Buffer.from([0xf0, 0x00]), // reserved packet type 15
      Buffer.from([0x30, 0x80, 0x80, 0x80, 0x01]), // PUBLISH announcing 2 MiB, over the limit
    ];
    for (const bytes of garbage) {
      await new Promise<void>((resolve, reject) => {
        const socket = tlsConnect({ host: 'localhost', port: fixture.hub.port, ca: fixture.root.certificatePem }, () => socket.write(bytes));
        socket.on('error', () => undefined);
        socket.on('close', () => resolve());
        socket.setTimeout(5000, () => reject(new Error('the hub kept a malformed connection open')));
      });
    }
    await survivor.publishAsync('devices/raw-survivor/messages/events/', 'still here', { qos: 1 });
    expect(fixture.hub.telemetryCount('raw-survivor')).toBe(1);
    const fresh = await connectDevice('raw-survivor', primaryKey);
    expect(fresh.connected).toBe(true);
  });

  it('closes a connection whose message exceeds 256 KiB, but takes 256 KiB', async () => {
    const { primaryKey } = await addSasDevice(fixture.hub, 'raw-big');
    const client = await connectDevice('raw-big', primaryKey);
    await client.publishAsync('devices/raw-big/messages/events/', Buffer.alloc(256 * 1024, 1), { qos: 1 });
    expect(fixture.hub.telemetryCount('raw-big')).toBe(1);
    const gone = closed(client);
    client.publish('devices/raw-big/messages/events/', Buffer.alloc(256 * 1024 + 1, 1), { qos: 1 });
    await gone;
    expect(fixture.hub.telemetryCount('raw-big')).toBe(1);
  });
});
