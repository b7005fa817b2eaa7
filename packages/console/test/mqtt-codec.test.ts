import {
  connackReason,
  encodeConnect,
  encodePuback,
  encodePublish,
  encodeSubscribe,
  MAX_INCOMING_PACKET,
  MqttProtocolError,
  PacketReader,
  PacketType,
} from '../src/fleet/mqtt-codec';
import { encodeRemainingLength } from '../../model/src/mqtt-packet-size';

/** The console's MQTT 3.1.1 codec (src/fleet/mqtt-codec.ts), byte for byte against the spec's examples. */
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

describe('encoding', () => {
  it('writes CONNECT with protocol level 4, flags, keep-alive, client id, username and password', () => {
    const bytes = encodeConnect({ clientId: 'd1', username: 'u', password: 'p', keepAlive: 60, clean: true });
    // 10 variable-header bytes + (2+2) + (2+1) + (2+1) = 20.
    expect(hex(bytes)).toBe('1014' + '00044d5154540' + '4' + 'c2' + '003c' + '00026431' + '000175' + '000170');
    const plain = encodeConnect({ clientId: 'x', keepAlive: 0, clean: false });
    expect(plain[9]).toBe(0); // no flags
    expect(() => encodeConnect({ clientId: 'x', password: 'p', keepAlive: 0, clean: true })).toThrow(TypeError);
  });

  it('writes SUBSCRIBE with the reserved flags 0010 and each filter with its QoS', () => {
    expect(hex(encodeSubscribe(10, [{ topic: 'a/#', qos: 1 }, { topic: 'b', qos: 0 }]))).toBe('820c' + '000a' + '0003612f2301' + '00016200');
  });

  it('writes PUBLISH at QoS 0 without and at QoS 1 with a packet id; UTF-8 topics and payloads', () => {
    expect(hex(encodePublish({ topic: 't', payload: 'hi', qos: 0 }))).toBe('3005' + '000174' + '6869');
    expect(hex(encodePublish({ topic: 't', payload: 'hi', qos: 1, packetId: 258 }))).toBe('3207' + '000174' + '0102' + '6869');
    expect(hex(encodePublish({ topic: 'é', payload: new Uint8Array(0), qos: 0 }))).toBe('3004' + '0002c3a9');
    expect(() => encodePublish({ topic: 't', payload: '', qos: 1 })).toThrow(TypeError);
    const large = encodePublish({ topic: 't', payload: new Uint8Array(200), qos: 0 });
    expect([...large.subarray(0, 3)]).toEqual([0x30, 0xcb, 0x01]);
  });

  it('writes PUBACK', () => {
    expect(hex(encodePuback(0xabcd))).toBe('4002abcd');
  });
});

describe('PacketReader', () => {
  it('decodes CONNACK, SUBACK, PUBACK, PINGRESP and PUBLISH at QoS 0 and 1', () => {
    const reader = new PacketReader();
    const stream = Buffer.concat([
      Buffer.from('20020105', 'hex'),
      Buffer.from('9004000a0180', 'hex'),
      Buffer.from('40020007', 'hex'),
      Buffer.from('d000', 'hex'),
      Buffer.from(encodePublish({ topic: 'x/y', payload: '{"a":1}', qos: 0 })),
      Buffer.from(encodePublish({ topic: 'z', payload: 'p', qos: 1, packetId: 9 })),
    ]);
    const packets = reader.push(stream);
    expect(packets[0]).toEqual({ type: PacketType.connack, sessionPresent: true, returnCode: 5 });
    expect(packets[1]).toEqual({ type: PacketType.suback, packetId: 10, granted: [1, 0x80] });
    expect(packets[2]).toEqual({ type: PacketType.puback, packetId: 7 });
    expect(packets[3]).toEqual({ type: PacketType.pingresp });
    expect(packets[4]).toMatchObject({ type: PacketType.publish, topic: 'x/y', qos: 0 });
    expect(Buffer.from((packets[4] as { payload: Uint8Array }).payload).toString()).toBe('{"a":1}');
    expect(packets[5]).toMatchObject({ type: PacketType.publish, topic: 'z', qos: 1, packetId: 9 });
    expect(packets).toHaveLength(6);
  });

  it('reassembles packets split across WebSocket messages at any byte, and keeps a partial one', () => {
    const whole = Buffer.concat([Buffer.from(encodePublish({ topic: 'twin', payload: 'x'.repeat(300), qos: 1, packetId: 1 })), Buffer.from('20020000', 'hex')]);
    for (let cut = 1; cut < whole.length; cut += 37) {
      const reader = new PacketReader();
      const first = reader.push(whole.subarray(0, cut));
      const rest = reader.push(whole.subarray(cut));
      const all = [...first, ...rest];
      expect(all.map((packet) => packet.type)).toEqual([PacketType.publish, PacketType.connack]);
    }
    const reader = new PacketReader();
    expect(reader.push(Buffer.from('3005', 'hex'))).toEqual([]);
    expect(reader.push(Buffer.from('000174', 'hex'))).toEqual([]);
    expect(reader.push(Buffer.from('6869', 'hex'))).toHaveLength(1);
  });

  it('refuses malformed streams: a 5-byte length, a packet over the limit, QoS 2, truncation, an unexpected type', () => {
    expect(() => new PacketReader().push(Buffer.from('30ffffffff01', 'hex'))).toThrow(MqttProtocolError);
    expect(() => new PacketReader().push(Buffer.from([0x30, ...encodeRemainingLength(MAX_INCOMING_PACKET + 1)]))).toThrow(/limit/);
    expect(() => new PacketReader().push(Buffer.from('3403000174', 'hex'))).toThrow(/QoS 2/);
    expect(() => new PacketReader().push(Buffer.from('3003000574', 'hex'))).toThrow(/truncated/);
    expect(() => new PacketReader().push(Buffer.from('200100', 'hex'))).toThrow(/truncated/);
    expect(() => new PacketReader().push(Buffer.from('1000', 'hex'))).toThrow(/Unexpected MQTT packet type 1/);
  });

  it('says CONNACK refusals in words', () => {
    expect(connackReason(5)).toBe('not authorized');
    expect(connackReason(4)).toBe('bad user name or password');
    expect(connackReason(42)).toBe('return code 42');
  });
});
