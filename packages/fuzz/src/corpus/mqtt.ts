import { encodeRemainingLength } from '@opendps/model';
import { mutate, shuffleFrames } from '../mutate';
import { deepJson } from './http';
import type { Rng } from '../rng';
import type { CorpusContext } from './context';

/** MQTT 3.1.1 packets encoded by hand, so the generators can also write what no encoder would. */
export function remainingLength(length: number): Buffer {
  return Buffer.from(encodeRemainingLength(length));
}

export function packet(firstByte: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([firstByte]), remainingLength(body.length), body]);
}

function str(text: string | Buffer): Buffer {
  const bytes = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
  const length = Buffer.alloc(2);
  length.writeUInt16BE(bytes.length & 0xffff);
  return Buffer.concat([length, bytes]);
}

function u16(value: number): Buffer {
  const out = Buffer.alloc(2);
  out.writeUInt16BE(value & 0xffff);
  return out;
}

export function connect(clientId: string, username?: string, password?: string, keepalive = 60): Buffer {
  const flags = 0x02 | (username !== undefined ? 0x80 : 0) | (password !== undefined ? 0x40 : 0);
  return packet(
    0x10,
    Buffer.concat([
      str('MQTT'),
      Buffer.from([4, flags]),
      u16(keepalive),
      str(clientId),
      ...(username !== undefined ? [str(username)] : []),
      ...(password !== undefined ? [str(password)] : []),
    ]),
  );
}

export function subscribe(id: number, topic: string, qos = 1): Buffer {
  return packet(0x82, Buffer.concat([u16(id), str(topic), Buffer.from([qos])]));
}

export function unsubscribe(id: number, topic: string): Buffer {
  return packet(0xa2, Buffer.concat([u16(id), str(topic)]));
}

export function publish(topic: string, payload: Buffer | string, qos = 0, id = 1): Buffer {
  return packet(0x30 | (qos << 1), Buffer.concat([str(topic), qos > 0 ? u16(id) : Buffer.alloc(0), Buffer.from(payload)]));
}

export const PINGREQ = Buffer.from([0xc0, 0x00]);
export const DISCONNECT = Buffer.from([0xe0, 0x00]);

/** MQTT-specific tricks: lengths the fixed header can say but the body never brings. */
function mqttTrick(rng: Rng, frame: Buffer): Buffer {
  const first = frame[0] ?? 0x30;
  switch (rng.int(6)) {
    case 0:
      return Buffer.from([first, 0xff, 0xff, 0xff, 0x7f]); // 256 MiB announced, nothing follows
    case 1:
      return Buffer.from([first, 0xff, 0xff, 0xff, 0xff, 0x7f]); // a fifth length byte
    case 2:
      return Buffer.concat([Buffer.from([first]), remainingLength(rng.int(1 << 20)), frame.subarray(2)]); // wrong length
    case 3:
      return Buffer.from([first, 0x80, 0x80, 0x80, 0x00]); // zero in its longest (non-minimal) form
    case 4:
      return Buffer.from([rng.pick([0x00, 0xf0, 0x12, 0x31, 0x36, 0x83, 0x20, 0x90]), 0x00]); // reserved/server-only types, bad flags
    default: {
      // a string length inside the body pointing past its end
      const out = Buffer.from(frame);
      if (out.length > 4) out.writeUInt16BE(0xffff, 2 + rng.int(out.length - 4));
      return out;
    }
  }
}

/** DPS device registration traffic (docs/device-wire.md §2), valid then mutated. */
export function dpsSequence(ctx: CorpusContext, rng: Rng): Buffer[] {
  const resource = `${ctx.idScope}/registrations/${ctx.registrationId}`;
  const frames = [
    connect(ctx.registrationId, `${resource}/api-version=2019-03-31&ClientVersion=fuzz`, ctx.deviceToken),
    subscribe(1, '$dps/registrations/res/#'),
  ];
  for (let n = 1 + rng.int(40); n > 0; n--) {
    const rid = rng.int(1e6);
    frames.push(
      rng.pick([
        () => publish(`$dps/registrations/PUT/iotdps-register/?$rid=${rid}`, JSON.stringify({ registrationId: ctx.registrationId }), 1, 1 + rng.int(65535)),
        () => publish(`$dps/registrations/GET/iotdps-get-operationstatus/?$rid=${rid}&operationId=${rng.bytes(8).toString('hex')}`, ' ', 1, 2),
        () => publish(`$dps/registrations/PUT/iotdps-register/?$rid=${rid}`, rng.bytes(rng.size(2048)), rng.int(2)),
        () => publish(`$dps/${rng.bytes(rng.size(40)).toString('latin1')}`, '{}'),
        () => publish('$dps/registrations/PUT/iotdps-register/?$rid=1', '{"payload":' + '['.repeat(rng.size(5000)) + '}'),
        () => publish(`$dps/registrations/PUT/iotdps-register/?$rid=${rid}`, `{"registrationId":"${ctx.registrationId}","payload":${deepJson(rng.pick([12, 30000]))}}`, 1, 3),
        () => PINGREQ,
        () => subscribe(3, rng.pick(['#', '$dps/#', '+/+', '$dps/registrations/res/#'])),
        () => unsubscribe(4, '$dps/registrations/res/#'),
      ])(),
    );
  }
  if (rng.chance(0.5)) frames.push(DISCONNECT);
  return frames;
}

/** Built-in hub device traffic: telemetry, twin get and reported patch (docs/device-wire.md). */
export function hubSequence(ctx: CorpusContext, rng: Rng): Buffer[] {
  const id = ctx.registrationId;
  const frames = [connect(id, `${ctx.hubHost}/${id}/?api-version=2021-04-12`, ctx.hubDeviceToken), subscribe(1, '$iothub/twin/res/#')];
  for (let n = 1 + rng.int(40); n > 0; n--) {
    frames.push(
      rng.pick([
        () => publish(`devices/${id}/messages/events/`, rng.bytes(rng.size(1024)), rng.int(2)),
        () => publish(`$iothub/twin/GET/?$rid=${rng.int(1000)}`, ''),
        () => publish(`$iothub/twin/PATCH/properties/reported/?$rid=${rng.int(1000)}`, '{"a":' + '{"b":'.repeat(rng.size(200)) + '1'),
        () => publish(`$iothub/twin/PATCH/properties/reported/?$rid=${rng.int(1000)}`, rng.bytes(rng.size(512))),
        () => publish(`$iothub/twin/PATCH/properties/reported/?$rid=${rng.int(1000)}`, `{"a":${deepJson(rng.pick([12, 8000]))}}`),
        () => publish(`devices/other/messages/events/`, 'x'),
        () => subscribe(2, rng.pick(['#', 'devices/+/messages/devicebound/#', '$iothub/methods/POST/#'])),
        () => PINGREQ,
      ])(),
    );
  }
  return frames;
}

/** One connection's worth of frames: a mutated valid sequence, MQTT tricks, or random bytes. */
export function mqttConnection(rng: Rng, valid: Buffer[]): Buffer[] {
  const mode = rng.int(10);
  if (mode === 0) return Array.from({ length: 1 + rng.int(20) }, () => rng.bytes(1 + rng.size(512)));
  const frames = shuffleFrames(rng, valid);
  const rate = mode < 4 ? 0.02 : 0.2; // some connections stay mostly valid so their later frames are parsed
  return frames.map((frame, i) => {
    if (i === 0 && mode < 4) return frame;
    if (!rng.chance(rate)) return frame;
    return rng.chance(0.3) ? mqttTrick(rng, frame) : mutate(rng, frame);
  });
}
