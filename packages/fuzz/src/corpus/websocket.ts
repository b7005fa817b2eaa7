import { mutate } from '../mutate';
import type { Rng } from '../rng';

/** The upgrade every Azure IoT WebSocket transport sends (docs/device-wire.md §5). */
export function upgrade(protocol: string, extra: string[] = [], path = '/$iothub/websocket'): Buffer {
  return Buffer.from(
    [
      `GET ${path} HTTP/1.1`,
      'Host: localhost',
      'Upgrade: websocket',
      'Connection: Upgrade',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
      'Sec-WebSocket-Version: 13',
      `Sec-WebSocket-Protocol: ${protocol}`,
      ...extra,
      '',
      '',
    ].join('\r\n'),
    'latin1',
  );
}

/** A client frame (masked, as RFC 6455 §5.3 requires); `length` may lie about the payload. */
export function wsFrame(payload: Buffer, options: { opcode?: number; fin?: boolean; masked?: boolean; rsv?: number; length?: number } = {}): Buffer {
  const { opcode = 2, fin = true, masked = true, rsv = 0 } = options;
  const length = options.length ?? payload.length;
  const head: number[] = [(fin ? 0x80 : 0) | (rsv << 4) | opcode];
  const maskBit = masked ? 0x80 : 0;
  let extended = Buffer.alloc(0);
  if (length < 126) head.push(maskBit | length);
  else if (length < 0x10000) {
    head.push(maskBit | 126);
    extended = Buffer.alloc(2);
    extended.writeUInt16BE(length);
  } else {
    head.push(maskBit | 127);
    extended = Buffer.alloc(8);
    extended.writeBigUInt64BE(BigInt(length));
  }
  const key = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  const body = Buffer.from(payload);
  if (masked) for (let i = 0; i < body.length; i++) body[i] = (body[i] as number) ^ (key[i % 4] as number);
  return Buffer.concat([Buffer.from(head), extended, masked ? key : Buffer.alloc(0), body]);
}

function badFrame(rng: Rng, inner: Buffer): Buffer {
  switch (rng.int(8)) {
    case 0:
      return wsFrame(inner, { masked: false });
    case 1:
      return wsFrame(inner, { rsv: 1 + rng.int(7) }); // compressed bit without a valid deflate stream, or undefined bits
    case 2:
      return wsFrame(inner.subarray(0, 4), { length: rng.pick([0xffffffff, 2 ** 40, 2 ** 53 - 1, 300000]) });
    case 3:
      return wsFrame(rng.bytes(200), { opcode: rng.pick([8, 9, 10]) }); // control frame over 125 bytes
    case 4:
      return wsFrame(inner, { opcode: rng.pick([3, 4, 7, 11, 15]) });
    case 5:
      return wsFrame(inner, { opcode: 0 }); // continuation with nothing to continue
    case 6:
      return Buffer.concat([wsFrame(inner, { fin: false }), wsFrame(inner, { opcode: 2 })]); // new message inside a fragmented one
    default:
      return mutate(rng, wsFrame(inner));
  }
}

function badUpgrade(rng: Rng, protocol: string): Buffer {
  switch (rng.int(7)) {
    case 0:
      return upgrade(rng.pick(['', 'mqttv3.1', 'amqp', 'x'.repeat(5000), 'mqtt, AMQPWSB10, mqtt']));
    case 1:
      return upgrade(protocol, ['Sec-WebSocket-Version: 8']);
    case 2:
      return upgrade(protocol, [`Sec-WebSocket-Extensions: permessage-deflate; ${rng.pick(['server_max_window_bits=1', 'client_max_window_bits=99', 'x'.repeat(9000), 'server_no_context_takeover; server_no_context_takeover'])}`]);
    case 3:
      return upgrade(protocol, [], rng.pick(['/', '/$iothub/websocket/../x', '/$iothub/websocket?x=' + 'y'.repeat(8000)]));
    case 4:
      return Buffer.from(upgrade(protocol).toString('latin1').replace('dGhlIHNhbXBsZSBub25jZQ==', rng.pick(['', 'short', '!!!!'])), 'latin1');
    case 5:
      return Buffer.from(upgrade(protocol).toString('latin1').replace('GET', rng.pick(['POST', 'PUT'])), 'latin1');
    default:
      return mutate(rng, upgrade(protocol));
  }
}

/** An upgrade (valid or not) followed at once by frames carrying the inner protocol's bytes. */
export function websocketConnection(rng: Rng, protocol: string, inner: Buffer[]): Buffer[] {
  if (rng.chance(0.1)) return [badUpgrade(rng, protocol), wsFrame(inner[0] ?? Buffer.alloc(0))];
  const frames = [upgrade(protocol, rng.chance(0.3) ? ['Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits'] : [])];
  for (const payload of inner) frames.push(rng.chance(0.1) ? badFrame(rng, payload) : wsFrame(payload));
  return frames;
}
