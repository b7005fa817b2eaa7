import { PassThrough } from 'node:stream';
import { peekConnect, readConnect } from '../src/connect-peek';

const str = (value: string): Buffer => {
  const bytes = Buffer.from(value, 'utf8');
  return Buffer.concat([Buffer.from([bytes.length >> 8, bytes.length & 0xff]), bytes]);
};

function remainingLength(length: number): Buffer {
  const out: number[] = [];
  do {
    let byte = length % 128;
    length = Math.floor(length / 128);
    if (length > 0) byte |= 0x80;
    out.push(byte);
  } while (length > 0);
  return Buffer.from(out);
}

/** A CONNECT as MQTT 3.1.1 §3.1 (level 4) or MQTT 5 §3.1 (level 5, empty property lists) lays it out. */
function connectPacket(options: { clientId: string; username?: string; password?: string; will?: boolean; level?: 4 | 5 }): Buffer {
  const level = options.level ?? 4;
  let flags = 0x02;
  if (options.username !== undefined) flags |= 0x80;
  if (options.password !== undefined) flags |= 0x40;
  if (options.will) flags |= 0x04;
  const parts = [str('MQTT'), Buffer.from([level, flags, 0, 60])];
  if (level === 5) parts.push(Buffer.from([0]));
  parts.push(str(options.clientId));
  if (options.will) parts.push(...(level === 5 ? [Buffer.from([0])] : []), str('will/topic'), str('bye'));
  if (options.username !== undefined) parts.push(str(options.username));
  if (options.password !== undefined) parts.push(str(options.password));
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([0x10]), remainingLength(body.length), body]);
}

describe('readConnect', () => {
  it('reads the client id and username of 3.1.1 and 5 CONNECTs, with and without a will', () => {
    const username = 'hub.example/dev-1/?api-version=2021-04-12';
    expect(readConnect(connectPacket({ clientId: 'dev-1', username, password: 'sas' }))).toEqual({ clientId: 'dev-1', username });
    expect(readConnect(connectPacket({ clientId: 'dev-1', username, will: true }))).toEqual({ clientId: 'dev-1', username });
    expect(readConnect(connectPacket({ clientId: 'dev-1', username, will: true, level: 5 }))).toEqual({ clientId: 'dev-1', username });
    expect(readConnect(connectPacket({ clientId: 'dev-1' }))).toEqual({ clientId: 'dev-1' });
  });

  it("says 'more' for every prefix of a CONNECT, including a long one whose length takes two bytes", () => {
    const packet = connectPacket({ clientId: 'dev-1', username: 'u'.repeat(300), password: 'p' });
    expect(packet[2]).toBe(0x02); // two length bytes
    for (let length = 0; length < packet.length; length++) expect(readConnect(packet.subarray(0, length))).toBe('more');
    expect(readConnect(packet)).toEqual({ clientId: 'dev-1', username: 'u'.repeat(300) });
  });

  it('is undefined for what is not a CONNECT it reads: another packet, HTTP, a bad protocol name, a string past the end', () => {
    expect(readConnect(Buffer.from([0x30, 0x00]))).toBeUndefined();
    expect(readConnect(Buffer.from('GET / HTTP/1.1\r\n\r\n'))).toBeUndefined();
    const packet = connectPacket({ clientId: 'dev-1', username: 'x' });
    const badName = Buffer.from(packet);
    badName.write('MQTX', 4);
    expect(readConnect(badName)).toBeUndefined();
    // The username flag set but no username in the packet.
    const truncated = Buffer.concat([Buffer.from([0x10, 14]), str('MQTT'), Buffer.from([4, 0x82, 0, 60]), str('ab')]);
    expect(readConnect(truncated)).toBeUndefined();
    expect(readConnect(Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01]))).toBeUndefined(); // five length bytes
  });
});

describe('peekConnect', () => {
  it('hands over the stream with every byte put back, the CONNECT arriving in pieces', async () => {
    const stream = new PassThrough();
    const packet = connectPacket({ clientId: 'dev-1', username: 'hub/dev-1/?api-version=1', password: 'sas' });
    const next = Buffer.from([0x82, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00]); // a SUBSCRIBE right behind it
    const peeked = new Promise<unknown>((resolve) => peekConnect(stream, 10_000, resolve));
    stream.write(packet.subarray(0, 5));
    await new Promise((resolve) => setImmediate(resolve));
    stream.write(Buffer.concat([packet.subarray(5), next]));
    expect(await peeked).toEqual({ clientId: 'dev-1', username: 'hub/dev-1/?api-version=1' });
    expect(stream.read()).toEqual(Buffer.concat([packet, next]));
  });

  it('hands over what is not a CONNECT at once, undecided, with its bytes', async () => {
    const stream = new PassThrough();
    const peeked = new Promise<unknown>((resolve) => peekConnect(stream, 10_000, resolve));
    stream.write(Buffer.from('GET /'));
    expect(await peeked).toBeUndefined();
    expect(stream.read()?.toString()).toBe('GET /');
  });

  it('destroys a stream that stays silent past the timeout, and one that ends before its CONNECT is whole', async () => {
    const silent = new PassThrough();
    const done = jest.fn();
    peekConnect(silent, 20, done);
    silent.write(Buffer.from([0x10, 0x20, 0x00]));
    await new Promise<void>((resolve) => silent.once('close', () => resolve()));
    expect(silent.destroyed).toBe(true);

    const ended = new PassThrough();
    peekConnect(ended, 10_000, done);
    ended.end(Buffer.from([0x10, 0x20]));
    ended.resume();
    await new Promise<void>((resolve) => ended.once('close', () => resolve()));
    expect(done).not.toHaveBeenCalled();
  });

  it('takes a stream error (a reset) while peeking without leaving it unhandled', async () => {
    const stream = new PassThrough();
    const done = jest.fn();
    peekConnect(stream, 10_000, done);
    stream.write(Buffer.from([0x10]));
    stream.destroy(new Error('ECONNRESET'));
    await new Promise<void>((resolve) => stream.once('close', () => resolve()));
    expect(done).not.toHaveBeenCalled();
  });
});
