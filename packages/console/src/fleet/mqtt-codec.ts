/**
 * MQTT 3.1.1 packets, the few a device needs (docs/console.md "Device fleet"): CONNECT, SUBSCRIBE,
 * PUBLISH at QoS 0/1, PUBACK, PINGREQ, DISCONNECT out; CONNACK, SUBACK, PUBLISH, PUBACK, PINGRESP in.
 * Pure functions over bytes, so they are tested in node and used over a browser WebSocket.
 */

import { encodeRemainingLength } from '../../../model/src/mqtt-packet-size';

export const PacketType = { connect: 1, connack: 2, publish: 3, puback: 4, subscribe: 8, suback: 9, pingreq: 12, pingresp: 13, disconnect: 14 } as const;

/** Larger incoming packets close the connection: a hub answers with twins and patches, never megabytes. */
export const MAX_INCOMING_PACKET = 1024 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export interface ConnectOptions {
  clientId: string;
  username?: string;
  password?: string;
  /** Seconds; 0 disables the keep-alive. */
  keepAlive: number;
  clean: boolean;
}

export interface PublishPacket {
  type: typeof PacketType.publish;
  topic: string;
  payload: Uint8Array;
  qos: 0 | 1;
  packetId?: number;
}

export type IncomingPacket =
  | { type: typeof PacketType.connack; sessionPresent: boolean; returnCode: number }
  | PublishPacket
  | { type: typeof PacketType.puback; packetId: number }
  | { type: typeof PacketType.suback; packetId: number; granted: number[] }
  | { type: typeof PacketType.pingresp };

/** A malformed or unexpected packet from the server: the connection cannot go on. */
export class MqttProtocolError extends Error {}

function utf8Field(text: string): Uint8Array {
  const bytes = encoder.encode(text);
  if (bytes.length > 0xffff) throw new RangeError('An MQTT string is at most 65535 bytes');
  const field = new Uint8Array(bytes.length + 2);
  field[0] = bytes.length >> 8;
  field[1] = bytes.length & 0xff;
  field.set(bytes, 2);
  return field;
}

function packet(firstByte: number, ...parts: (Uint8Array | number[])[]): Uint8Array {
  const length = parts.reduce((sum, part) => sum + part.length, 0);
  const header = [firstByte, ...encodeRemainingLength(length)];
  const out = new Uint8Array(header.length + length);
  out.set(header, 0);
  let at = header.length;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function uint16(value: number): number[] {
  return [(value >> 8) & 0xff, value & 0xff];
}

export function encodeConnect(options: ConnectOptions): Uint8Array {
  // Protocol name "MQTT", level 4 (3.1.1) [MQTT-3.1.2-1, -2].
  let flags = options.clean ? 0x02 : 0;
  const payload = [utf8Field(options.clientId)];
  if (options.username !== undefined) {
    flags |= 0x80;
    payload.push(utf8Field(options.username));
  }
  if (options.password !== undefined) {
    // A password without a username is forbidden in 3.1.1 [MQTT-3.1.2-22].
    if (options.username === undefined) throw new TypeError('An MQTT password needs a username');
    flags |= 0x40;
    payload.push(utf8Field(options.password));
  }
  return packet(0x10, utf8Field('MQTT'), [4, flags, ...uint16(options.keepAlive)], ...payload);
}

export function encodeSubscribe(packetId: number, filters: { topic: string; qos: 0 | 1 }[]): Uint8Array {
  // SUBSCRIBE has fixed-header flags 0b0010 [MQTT-3.8.1-1].
  return packet(0x82, uint16(packetId), ...filters.flatMap((filter) => [utf8Field(filter.topic), [filter.qos]]));
}

export function encodePublish(publish: { topic: string; payload: Uint8Array | string; qos: 0 | 1; packetId?: number }): Uint8Array {
  const payload = typeof publish.payload === 'string' ? encoder.encode(publish.payload) : publish.payload;
  if (publish.qos === 1 && publish.packetId === undefined) throw new TypeError('A QoS 1 PUBLISH needs a packet id');
  return packet(0x30 | (publish.qos << 1), utf8Field(publish.topic), publish.qos === 1 ? uint16(publish.packetId ?? 0) : [], payload);
}

export function encodePuback(packetId: number): Uint8Array {
  return packet(0x40, uint16(packetId));
}

export const PINGREQ = Uint8Array.of(0xc0, 0);
export const DISCONNECT = Uint8Array.of(0xe0, 0);

/**
 * Splits a byte stream into packets: WebSocket messages need not align with packets (a broker may
 * put several in one frame, or split one).
 */
export class PacketReader {
  private buffer = new Uint8Array(0);

  /** The complete packets now available; throws MqttProtocolError on a malformed stream. */
  push(chunk: Uint8Array): IncomingPacket[] {
    const joined = new Uint8Array(this.buffer.length + chunk.length);
    joined.set(this.buffer, 0);
    joined.set(chunk, this.buffer.length);
    const packets: IncomingPacket[] = [];
    let at = 0;
    for (;;) {
      const header = readHeader(joined, at);
      if (!header) break;
      const end = header.bodyStart + header.length;
      if (end > joined.length) break;
      packets.push(decodePacket(joined[at]!, joined.subarray(header.bodyStart, end)));
      at = end;
    }
    this.buffer = joined.slice(at);
    return packets;
  }
}

function readHeader(bytes: Uint8Array, at: number): { length: number; bodyStart: number } | undefined {
  let length = 0;
  let multiplier = 1;
  for (let i = 1; i <= 4; i++) {
    const byte = bytes[at + i];
    if (byte === undefined) return undefined;
    length += (byte & 0x7f) * multiplier;
    if ((byte & 0x80) === 0) {
      if (length > MAX_INCOMING_PACKET) throw new MqttProtocolError(`An incoming MQTT packet of ${length} bytes is over the ${MAX_INCOMING_PACKET}-byte limit`);
      return { length, bodyStart: at + i + 1 };
    }
    multiplier *= 128;
  }
  throw new MqttProtocolError('The remaining length of an MQTT packet is longer than 4 bytes');
}

function decodePacket(first: number, body: Uint8Array): IncomingPacket {
  const type = first >> 4;
  const need = (n: number) => {
    if (body.length < n) throw new MqttProtocolError(`An MQTT packet of type ${type} is truncated`);
  };
  const u16 = (i: number) => (body[i]! << 8) | body[i + 1]!;
  switch (type) {
    case PacketType.connack:
      need(2);
      return { type, sessionPresent: (body[0]! & 1) === 1, returnCode: body[1]! };
    case PacketType.publish: {
      const qos = (first >> 1) & 3;
      if (qos > 1) throw new MqttProtocolError(`PUBLISH at QoS ${qos} is not supported`);
      need(2);
      const topicLength = u16(0);
      need(2 + topicLength + (qos === 1 ? 2 : 0));
      const topic = decoder.decode(body.subarray(2, 2 + topicLength));
      const idAt = 2 + topicLength;
      return qos === 1
        ? { type, topic, qos: 1, packetId: u16(idAt), payload: body.slice(idAt + 2) }
        : { type, topic, qos: 0, payload: body.slice(idAt) };
    }
    case PacketType.puback:
      need(2);
      return { type, packetId: u16(0) };
    case PacketType.suback:
      need(3);
      return { type, packetId: u16(0), granted: [...body.subarray(2)] };
    case PacketType.pingresp:
      return { type };
    default:
      throw new MqttProtocolError(`Unexpected MQTT packet type ${type} from the server`);
  }
}

/** CONNACK return codes in words (MQTT 3.1.1 §3.2.2.3). */
export function connackReason(code: number): string {
  return (
    ['accepted', 'unacceptable protocol version', 'identifier rejected', 'server unavailable', 'bad user name or password', 'not authorized'][code] ??
    `return code ${code}`
  );
}
