import { Errors } from '@opendps/model';
import { Duplex } from 'node:stream';
import { generate, parser, type IConnectPacket, type Packet } from 'mqtt-packet';
import { createLeaf } from '@opendps/pki';
import { X509Certificate } from 'node:crypto';
import { createDpsMqttFrontEnd, type DpsMqttFrontEnd } from '../src';
import { GOODBYE_LINGER_MS } from '../src/options';
import type { ConnectionContext } from '../src/session';
import { FakeClock, ID_SCOPE, registerTopic, ScriptedRegistration, testPki, usernameFor } from './helpers';

/**
 * The channel over an in-memory duplex pair (aedes' test habit): no sockets, no TLS. Every test
 * drives the front-end's own `handleConnection` with the packets a device sends, and reads what it
 * writes back, packet by packet and write by write. Timers are a fake clock.
 */
const RES = '$dps/registrations/res/#';
const CONNECT_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 3_600_000;

const sas = (registrationId: string): Buffer =>
  Buffer.from(`SharedAccessSignature sr=${ID_SCOPE}/registrations/${registrationId}&sig=abc%3D&skn=registration&se=1795684788`);

function connectPacket(registrationId: string, extra: Partial<IConnectPacket> = {}): IConnectPacket {
  return { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId: registrationId, username: usernameFor(registrationId), password: sas(registrationId), ...extra };
}

/** The device's end of the pair: what it sends, and every write the server made, decoded. */
class Device {
  readonly writes: Buffer[] = [];
  readonly received: Packet[] = [];
  ended = false;
  private readonly decoder = parser();
  private waiters: Array<() => void> = [];
  readonly server: Duplex;
  readonly closed: Promise<void>;

  constructor() {
    this.decoder.on('packet', (packet: Packet) => this.received.push(packet));
    this.server = new Duplex({
      read() {},
      write: (chunk: Buffer, _encoding, done) => {
        this.writes.push(chunk);
        this.decoder.parse(chunk);
        for (const waiter of this.waiters.splice(0)) waiter();
        done();
      },
      final: (done) => {
        this.ended = true;
        done();
      },
    });
    this.closed = new Promise((resolve) => this.server.once('close', () => resolve()));
  }

  send(packet: Packet | Buffer): void {
    this.server.push(Buffer.isBuffer(packet) ? packet : generate(packet));
  }

  /** Resolves once `count` packets came back in all. */
  async packets(count: number): Promise<Packet[]> {
    while (this.received.length < count) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return this.received.slice(0, count);
  }

  get destroyed(): boolean {
    return this.server.destroyed;
  }
}

/** A macrotask: the stream's queued 'data' events and the service's promises have run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('the MQTT channel over an in-memory pair', () => {
  let service: ScriptedRegistration;
  let clock: FakeClock;
  let frontEnd: DpsMqttFrontEnd;

  beforeEach(() => {
    service = new ScriptedRegistration();
    clock = new FakeClock();
    frontEnd = createDpsMqttFrontEnd({ registration: service, timers: clock, connectTimeoutMs: CONNECT_TIMEOUT_MS, requestTimeoutMs: REQUEST_TIMEOUT_MS, maxPacketBytes: 1024 });
  });
  afterEach(() => frontEnd.close());

  function device(context: ConnectionContext = { transport: 'mqtt' }): Device {
    const created = new Device();
    frontEnd.handleConnection(created.server, context);
    return created;
  }

  async function connected(registrationId: string, extra: Partial<IConnectPacket> = {}): Promise<Device> {
    const created = device();
    created.send(connectPacket(registrationId, extra));
    expect(await created.packets(1)).toEqual([expect.objectContaining({ cmd: 'connack', returnCode: 0, sessionPresent: false })]);
    return created;
  }

  describe('CONNECT', () => {
    test('accepted: CONNACK 0 in one write, and nothing else', async () => {
      const dev = await connected('dev-1');
      expect(dev.writes.map((write) => write.toString('hex'))).toEqual(['20020000']);
      expect(dev.destroyed).toBe(false);
    });

    test('[MQTT-3.1.0-1] a first packet other than CONNECT closes the connection, unanswered', async () => {
      const dev = device();
      dev.send({ cmd: 'pingreq' });
      await dev.closed;
      expect(dev.writes).toEqual([]);
    });

    test('[MQTT-3.1.0-2] a second CONNECT closes the connection', async () => {
      const dev = await connected('dev-2');
      dev.send(connectPacket('dev-2'));
      await dev.closed;
      expect(dev.received).toHaveLength(1);
    });

    test('MQTT 3.1 (MQIsdp, level 3) is served; its client id is at most 23 characters (CONNACK 2)', async () => {
      await connected('dev-31', { protocolId: 'MQIsdp', protocolVersion: 3 });
      const long = 'a'.repeat(24);
      const dev = device();
      dev.send(connectPacket(long, { protocolId: 'MQIsdp', protocolVersion: 3 }));
      expect(await dev.packets(1)).toEqual([expect.objectContaining({ cmd: 'connack', returnCode: 2 })]);
      expect(dev.ended).toBe(true);
    });

    test('an MQTT 5 CONNECT gets CONNACK 1 (unacceptable protocol level), then the connection ends', async () => {
      const dev = device();
      dev.send(connectPacket('dev-5', { protocolVersion: 5 }));
      expect(await dev.packets(1)).toEqual([expect.objectContaining({ cmd: 'connack', returnCode: 1 })]);
      expect(dev.ended).toBe(true);
      dev.server.push(null); // the device's FIN
      await dev.closed;
    });

    test('[MQTT-3.1.2-3] a CONNECT with its reserved flag set closes the connection, unanswered', async () => {
      const bytes = generate(connectPacket('dev-flag'));
      bytes[9] = (bytes[9] as number) | 0x01; // connect flags follow 00 04 'MQTT' 04
      const dev = device();
      dev.send(bytes);
      await dev.closed;
      expect(dev.writes).toEqual([]);
    });

    test('a refusal (decideConnect) is its CONNACK code, then the connection ends', async () => {
      const dev = device();
      dev.send(connectPacket('dev-r', { username: 'not-a-dps-username' }));
      expect(await dev.packets(1)).toEqual([expect.objectContaining({ cmd: 'connack', returnCode: 4 })]);
      expect(dev.ended).toBe(true);
    });

    test('a will is dropped and the session is clean: a connection that dies sends no request', async () => {
      const dev = await connected('dev-will', { clean: false, will: { topic: registerTopic('w1'), payload: Buffer.from('{}'), qos: 1, retain: false } });
      dev.server.destroy();
      await dev.closed;
      await settle();
      expect(service.registered).toEqual([]);
    });

    test('packets sent behind an X.509 CONNECT wait until the chain is judged, and are handled in order after the CONNACK', async () => {
      let judged!: () => void;
      service.onAuthenticate = () => new Promise<void>((resolve) => (judged = resolve));
      const leaf = createLeaf(testPki().ca, { commonName: 'x509-wait' });
      const dev = device({ transport: 'mqtt', clientCertificateChain: [new X509Certificate(leaf.certificatePem).raw] });
      dev.send(Buffer.concat([generate(connectPacket('x509-wait', { password: undefined })), generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: RES, qos: 1 }] })]));
      dev.send({ cmd: 'pingreq' });
      await settle();
      expect(dev.received).toEqual([]);
      judged();
      const packets = await dev.packets(3);
      expect(packets.map((packet) => packet.cmd)).toEqual(['connack', 'suback', 'pingresp']);
    });

    test('an X.509 chain refused at CONNECT is CONNACK 5; throttled while judging it is CONNACK 3', async () => {
      const leaf = createLeaf(testPki().ca, { commonName: 'x509-refused' });
      const context: ConnectionContext = { transport: 'mqtt', clientCertificateChain: [new X509Certificate(leaf.certificatePem).raw] };
      for (const [error, returnCode] of [[Errors.unauthorized(), 5], [Errors.throttled(undefined, { 'retry-after': '2' }), 3]] as const) {
        service.onAuthenticate = async () => {
          throw error;
        };
        const dev = device(context);
        dev.send(connectPacket('x509-refused', { password: undefined }));
        expect(await dev.packets(1)).toEqual([expect.objectContaining({ cmd: 'connack', returnCode })]);
      }
    });
  });

  describe('timers on the injected clock', () => {
    test('no CONNECT within the connect timeout: closed then, not before', async () => {
      const dev = device();
      await settle();
      clock.advance(CONNECT_TIMEOUT_MS - 1);
      expect(dev.destroyed).toBe(false);
      clock.advance(1);
      expect(dev.destroyed).toBe(true);
    });

    test('[MQTT-3.1.2-24] keepalive: closed after 1.5 times it without a packet; any packet restarts it', async () => {
      const dev = await connected('dev-ka', { keepalive: 10 });
      clock.advance(14_000);
      dev.send({ cmd: 'pingreq' });
      expect(await dev.packets(2)).toEqual([expect.anything(), expect.objectContaining({ cmd: 'pingresp' })]);
      clock.advance(14_999);
      expect(dev.destroyed).toBe(false);
      clock.advance(1);
      expect(dev.destroyed).toBe(true);
    });

    test('keepalive 0 is none: only the request deadline closes the connection', async () => {
      const dev = await connected('dev-ka0', { keepalive: 0 });
      clock.advance(REQUEST_TIMEOUT_MS - 1);
      expect(dev.destroyed).toBe(false);
      clock.advance(1);
      expect(dev.ended).toBe(true);
    });

    test('idle connections hold no timer of their own: one per duration for all of them', async () => {
      const devices = await Promise.all(['idle-1', 'idle-2', 'idle-3'].map((id) => connected(id, { keepalive: 60 })));
      // one timer for the keepalives (90 s), one for the first-request deadlines
      expect(clock.pending()).toEqual([90_000, REQUEST_TIMEOUT_MS]);
      const [first, second] = devices.map((dev) => dev.server.listeners('data'));
      expect(first).toEqual(second); // the same shared listener, no closure per connection
    });
  });

  describe('after CONNECT', () => {
    test('SUBSCRIBE: the response filter granted at QoS <= 1, anything else 0x80, one SUBACK in one write', async () => {
      const dev = await connected('dev-sub');
      dev.send({ cmd: 'subscribe', messageId: 7, subscriptions: [{ topic: '#', qos: 1 }, { topic: RES, qos: 2 }, { topic: 'devices/x/#', qos: 0 }] });
      const [, suback] = await dev.packets(2);
      expect(suback).toMatchObject({ cmd: 'suback', messageId: 7, granted: [128, 1, 128] });
      expect(dev.writes).toHaveLength(2);
    });

    test('UNSUBSCRIBE gets UNSUBACK; PINGREQ gets PINGRESP', async () => {
      const dev = await connected('dev-unsub');
      dev.send({ cmd: 'unsubscribe', messageId: 9, unsubscriptions: [RES] });
      dev.send({ cmd: 'pingreq' });
      const [, unsuback, pingresp] = await dev.packets(3);
      expect(unsuback).toMatchObject({ cmd: 'unsuback', messageId: 9 });
      expect(pingresp).toMatchObject({ cmd: 'pingresp' });
    });

    test('a QoS 1 request: PUBACK first, then the answer at the granted QoS with our packet id; the device PUBACKs it', async () => {
      const dev = await connected('dev-pub');
      dev.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: RES, qos: 1 }] });
      dev.send({ cmd: 'publish', topic: registerTopic('r1'), payload: Buffer.from('{"registrationId":"dev-pub"}'), qos: 1, messageId: 42, retain: true, dup: false });
      const [, , ack, answer] = await dev.packets(4);
      expect(ack).toEqual(expect.objectContaining({ cmd: 'puback', messageId: 42 }));
      expect(answer).toMatchObject({ cmd: 'publish', topic: '$dps/registrations/res/202/?$rid=r1&retry-after=3', qos: 1, retain: false });
      const messageId = (answer as { messageId: number }).messageId;
      expect(messageId).toBeGreaterThan(0);
      expect(dev.writes).toHaveLength(4);
      dev.send({ cmd: 'puback', messageId });
      dev.send({ cmd: 'pingreq' });
      expect((await dev.packets(5))[4]).toMatchObject({ cmd: 'pingresp' });
    });

    test('a QoS 0 request is answered at QoS 0 when nothing was subscribed, without a PUBACK', async () => {
      const dev = await connected('dev-q0');
      dev.send({ cmd: 'publish', topic: registerTopic('q0'), payload: Buffer.from('{}'), qos: 0, retain: false, dup: false });
      const [, answer] = await dev.packets(2);
      expect(answer).toMatchObject({ cmd: 'publish', qos: 0, topic: '$dps/registrations/res/202/?$rid=q0&retry-after=3' });
    });

    test.each([
      ['a QoS 2 PUBLISH', { cmd: 'publish', topic: registerTopic('q2'), payload: Buffer.from('{}'), qos: 2, messageId: 1, retain: false, dup: false }],
      ['a PUBLISH with a wildcard', { cmd: 'publish', topic: '$dps/registrations/PUT/iotdps-register/#?$rid=1', payload: Buffer.from('{}'), qos: 0, retain: false, dup: false }],
      ['a PUBLISH outside the DPS topics', { cmd: 'publish', topic: 'devices/dev/messages/events/', payload: Buffer.from('{}'), qos: 1, messageId: 1, retain: false, dup: false }],
      ['a PUBREL (no QoS 2 exchange exists)', { cmd: 'pubrel', messageId: 1 }],
      ['a server packet (CONNACK)', { cmd: 'connack', returnCode: 0, sessionPresent: false }],
    ] as Array<[string, Packet]>)('%s closes the connection, and reaches no service', async (_name, packet) => {
      const dev = await connected('dev-bad');
      dev.send(packet);
      await dev.closed;
      await settle();
      expect(dev.received).toHaveLength(1);
      expect(service.registered).toEqual([]);
    });

    test('a frame header announcing more than the limit closes the connection before its body arrives', async () => {
      const dev = await connected('dev-big');
      dev.send(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x07])); // a PUBLISH of 16 MB, nothing of it sent
      await dev.closed;
    });

    test.each([
      ['a SUBSCRIBE without subscriptions [MQTT-3.8.3-3]', [0x82, 0x02, 0x00, 0x01]],
      ['an UNSUBSCRIBE without topics [MQTT-3.10.3-2]', [0xa2, 0x02, 0x00, 0x01]],
      ['a SUBSCRIBE cut short inside its topic', [0x82, 0x05, 0x00, 0x01, 0x00, 0x09, 0x24]],
      ['a PUBLISH whose topic runs past the frame', [0x30, 0x03, 0x00, 0x09, 0x24]],
    ])('%s closes the connection', async (_name, bytes) => {
      const dev = await connected('dev-malformed');
      dev.send(Buffer.from(bytes));
      await dev.closed;
      expect(dev.received).toHaveLength(1);
    });

    test('packets split anywhere, or several in one chunk, are handled in order', async () => {
      const dev = device();
      const bytes = Buffer.concat([generate(connectPacket('dev-split')), generate({ cmd: 'subscribe', messageId: 3, subscriptions: [{ topic: RES, qos: 0 }] }), generate({ cmd: 'pingreq' })]);
      for (let at = 0; at < bytes.length; at += 5) dev.send(bytes.subarray(at, at + 5));
      expect((await dev.packets(3)).map((packet) => packet.cmd)).toEqual(['connack', 'suback', 'pingresp']);
    });
  });

  describe('a CONNECT that names another server (route)', () => {
    test('the stream goes there with every byte from its CONNECT on; a DPS CONNECT is served here', async () => {
      const handedOver: Array<{ stream: Duplex; context: ConnectionContext }> = [];
      const routed = createDpsMqttFrontEnd({
        registration: service,
        timers: clock,
        route: (connect) => (connect.username?.startsWith('hub.local/') ? (stream, context) => handedOver.push({ stream, context }) : undefined),
      });
      try {
        const hubDevice = new Device();
        routed.handleConnection(hubDevice.server, { transport: 'mqtt', remoteAddress: '10.0.0.7' });
        const connect = generate(connectPacket('thermostat', { username: 'hub.local/thermostat/?api-version=2021-04-12' }));
        const ping = generate({ cmd: 'pingreq' });
        hubDevice.send(Buffer.concat([connect, ping.subarray(0, 1)]));
        await settle();
        expect(handedOver.map(({ context }) => context.remoteAddress)).toEqual(['10.0.0.7']);
        hubDevice.send(ping.subarray(1));
        await settle();
        const taken = handedOver[0]!.stream;
        expect(taken.listenerCount('data')).toBe(0);
        expect((taken.read() as Buffer).toString('hex')).toBe(Buffer.concat([connect, ping]).toString('hex'));
        expect(hubDevice.writes).toEqual([]);
        clock.advance(CONNECT_TIMEOUT_MS * 10); // no timer of ours is left on it
        expect(hubDevice.destroyed).toBe(false);

        const dpsDevice = new Device();
        routed.handleConnection(dpsDevice.server, { transport: 'mqtt' });
        dpsDevice.send(connectPacket('dps-device'));
        expect(await dpsDevice.packets(1)).toEqual([expect.objectContaining({ cmd: 'connack', returnCode: 0 })]);
        expect(handedOver).toHaveLength(1);
      } finally {
        await routed.close();
      }
    });
  });

  describe('DISCONNECT', () => {
    afterEach(() => jest.useRealTimers());

    test('ends the connection (FIN) and closes on the device FIN, not by a reset', async () => {
      const dev = await connected('dev-bye');
      dev.send({ cmd: 'disconnect' });
      await settle();
      expect(dev.ended).toBe(true);
      expect(dev.destroyed).toBe(false);
      dev.send(Buffer.from('late bytes are read and dropped'));
      dev.server.push(null);
      await dev.closed;
    });

    test('a device that sent DISCONNECT but never closes its side is cut off after the linger', async () => {
      const dev = await connected('dev-linger');
      jest.useFakeTimers();
      dev.send({ cmd: 'disconnect' });
      await jest.advanceTimersByTimeAsync(GOODBYE_LINGER_MS - 1);
      expect(dev.destroyed).toBe(false);
      await jest.advanceTimersByTimeAsync(1);
      expect(dev.destroyed).toBe(true);
    });
  });
});
