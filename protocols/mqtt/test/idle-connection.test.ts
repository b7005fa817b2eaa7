import { EventEmitter } from 'node:events';
import { generate, parser, type IConnectPacket, type Packet } from 'mqtt-packet';
import { Duplex, PassThrough } from 'node:stream';
import { closeWithStream, createBroker, noRouting, plainParserBuffer, releaseConnectOnConnack, type AedesBroker, type AedesClient } from '../src/aedes';

/**
 * An idle connection keeps no more of its CONNECT than the parser needs (docs/scale.md): the parser
 * aedes gives each client (mqtt-packet's) would otherwise hold the whole packet, password included.
 */
function connectPacket(protocolVersion: 4 | 5): IConnectPacket {
  return {
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion,
    clean: true,
    clientId: 'device-1',
    keepalive: 60,
    username: '0ne00000001/registrations/device-1/api-version=2019-03-31',
    password: Buffer.from('SharedAccessSignature sr=secret'),
  };
}

/** mqtt-packet's types do not declare `settings`, which its parser keeps and reads. */
const settingsOf = (mqtt: ReturnType<typeof parser>): unknown => (mqtt as unknown as { settings?: unknown }).settings;

function clientWithParser() {
  const mqtt = parser();
  const packets: Packet[] = [];
  mqtt.on('packet', (packet: Packet) => packets.push(packet));
  const client = Object.assign(new EventEmitter(), { _parser: mqtt }) as unknown as AedesClient;
  return { mqtt, packets, client };
}

describe('an idle MQTT connection', () => {
  it('keeps only the protocol version of its CONNECT, and still parses what follows', () => {
    const { mqtt, packets, client } = clientWithParser();
    releaseConnectOnConnack(client);
    mqtt.parse(generate(connectPacket(4)));
    expect(packets[0]).toMatchObject({ cmd: 'connect', password: Buffer.from('SharedAccessSignature sr=secret') });
    expect(settingsOf(mqtt)).toEqual({ protocolVersion: 4 });
    expect(JSON.stringify(settingsOf(mqtt))).not.toContain('secret');

    mqtt.parse(generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '$dps/registrations/res/#', qos: 1 }] }));
    mqtt.parse(generate({ cmd: 'publish', topic: '$dps/registrations/PUT/iotdps-register/?$rid=1', payload: Buffer.from('{}'), qos: 1, messageId: 2, retain: false, dup: false }));
    expect(packets.map((packet) => packet.cmd)).toEqual(['connect', 'subscribe', 'publish']);
    // Released once: the listener is gone after the CONNECT.
    expect(mqtt.listenerCount('packet')).toBe(1);
  });

  it('an MQTT 5 connection keeps version 5, so its properties still parse', () => {
    const { mqtt, packets, client } = clientWithParser();
    releaseConnectOnConnack(client);
    mqtt.parse(generate(connectPacket(5)));
    expect(settingsOf(mqtt)).toEqual({ protocolVersion: 5 });
    const publish = { cmd: 'publish' as const, topic: 't', payload: Buffer.from('x'), qos: 1 as const, messageId: 3, retain: false, dup: false, properties: { contentType: 'application/json' } };
    mqtt.parse(generate(publish, { protocolVersion: 5 }));
    expect(packets[1]).toMatchObject({ cmd: 'publish', properties: { contentType: 'application/json' } });
  });

  it('buffers its input in a plain list, not a stream, and still parses packets split anywhere', () => {
    const { mqtt, packets, client } = clientWithParser();
    const listOf = (): unknown => (mqtt as unknown as { _list: unknown })._list;
    // bl's BufferListStream is a (readable-stream) Duplex: it carries stream states.
    expect(listOf()).toHaveProperty('_readableState');
    plainParserBuffer(client);
    expect(listOf()).not.toHaveProperty('_readableState');
    const bytes = Buffer.concat([
      generate(connectPacket(4)),
      generate({ cmd: 'publish', topic: '$dps/registrations/PUT/iotdps-register/?$rid=1', payload: Buffer.from('{"registrationId":"device-1"}'), qos: 1, messageId: 2, retain: false, dup: false }),
    ]);
    for (let at = 0; at < bytes.length; at += 7) mqtt.parse(bytes.subarray(at, at + 7));
    expect(packets.map((packet) => packet.cmd)).toEqual(['connect', 'publish']);
    expect(packets[1]).toMatchObject({ payload: Buffer.from('{"registrationId":"device-1"}') });
  });

  describe('closeWithStream', () => {
    let broker: AedesBroker;
    beforeAll(async () => {
      broker = await createBroker({
        preConnect: (_client, _packet, done) => done(null, true),
        authenticate: (_client, _username, _password, done) => done(null, true),
        authorizeSubscribe: (_client, sub, done) => done(null, sub),
        authorizePublish: (_client, _packet, done) => done(null),
        connectTimeout: 60_000,
        mq: noRouting,
      });
    });
    afterAll(() => new Promise<void>((resolve) => broker.close(() => resolve())));

    /** A stream as aedes gets one, and the listeners stream.finished() puts on it. */
    function handled() {
      const stream = Duplex.from({ readable: new PassThrough(), writable: new PassThrough() });
      const client = broker.handle(stream);
      return { stream, client, watchers: () => stream.listenerCount('finish') + stream.listenerCount('prefinish') };
    }

    it("drops stream.finished()'s listeners and still closes the client when the stream closes", async () => {
      const { stream, client, watchers } = handled();
      expect(watchers()).toBeGreaterThan(0);
      closeWithStream(client);
      expect(watchers()).toBe(0);
      expect(client.closed).toBe(false);
      stream.destroy(); // no 'end', no 'error': only 'close' tells
      await new Promise((resolve) => stream.once('close', resolve));
      expect(client.closed).toBe(true);
    });

    it('closes the client at once when the stream had already closed', async () => {
      const stream = new PassThrough();
      stream.destroy();
      await new Promise((resolve) => stream.once('close', resolve));
      const client = broker.handle(stream);
      closeWithStream(client); // before finished() could tell aedes (it would, on the next tick)
      expect(client.closed).toBe(true);
    });
  });
});
