import fc from 'fast-check';
import { message, types } from 'rhea';
import { checkValues, EncodingError, MAX_NESTING } from '../src';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const frames: any = require('rhea/lib/frames.js');
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const rheaTypes: any = types;

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s/g, ''), 'hex');
/** The reason a value is refused, or 'ok'. */
function verdict(bytes: Buffer, count?: number): string {
  try {
    checkValues(bytes, 0, bytes.length, count);
    return 'ok';
  } catch (error) {
    if (error instanceof EncodingError) return error.message;
    throw error;
  }
}
/** rhea's own encoder (what the Node SDKs send). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function encode(value: any): Buffer {
  const writer = new rheaTypes.Writer();
  writer.write(value);
  return writer.toBuffer();
}
const u32 = (value: number): string => value.toString(16).padStart(8, '0');

describe('checkValues accepts what real clients send', () => {
  test('rhea-encoded performatives and messages', () => {
    const bodies = [
      frames.open({ container_id: 'c', hostname: 'h', max_frame_size: 65536, channel_max: 1, idle_time_out: 120000, properties: { a: 1 } }),
      frames.attach({ name: 'l', handle: 0, role: true, source: { address: '0ne/registrations/x' }, target: {}, properties: { 'com.microsoft:api-version': '2019-03-31' } }),
      frames.transfer({ handle: 1, delivery_id: 2, delivery_tag: Buffer.from('t'), message_format: 0, more: false }),
      frames.sasl_mechanisms({ sasl_server_mechanisms: ['PLAIN', 'ANONYMOUS'] }),
      frames.sasl_init({ mechanism: 'PLAIN', initial_response: Buffer.from('\0a\0b'), hostname: 'localhost' }),
    ].map((performative) => frames.write_frame(frames.amqp_frame(0, performative)).subarray(8));
    for (const body of bodies) expect(verdict(body, 1)).toBe('ok');
    const request = message.encode({
      correlation_id: 'c-1',
      application_properties: { 'iotdps-operation-type': 'iotdps-register', 'iotdps-forceRegistration': false },
      body: message.data_section(Buffer.from('{"registrationId":"d"}')),
    });
    expect(verdict(request)).toBe('ok');
    expect(verdict(message.encode({ body: { nested: [1, [2, { three: 3.5 }], null, 'x'], when: new Date(0) } }))).toBe('ok');
    expect(verdict(Buffer.alloc(0))).toBe('ok');
  });

  test('arrays: symbols, described element constructors, a few zero-width elements', () => {
    expect(verdict(encode(rheaTypes.wrap_array(['a', 'bb'], 0xa3)))).toBe('ok');
    expect(verdict(encode(rheaTypes.Array8([1, 2, 3], 0x50)))).toBe('ok');
    expect(verdict(hex(`00 53 01 f0 ${u32(10)} ${u32(2)} 00 53 09 52 05 07`))).toBe('ok'); // array of described smalluints
    expect(verdict(hex('e0 02 02 40 e0 02 00 41'))).toBe('ok'); // two nulls, then an empty array of true
  });
});

describe('checkValues refuses what rhea would trust', () => {
  test.each([
    ['the sasl-init of the report: array32 of 2^32-1 nulls', '005341 f0 00000008 ffffffff 40', /past its end/],
    ['array32 of 2^32-1 nulls with a consistent size', `005341 f0 ${u32(5)} ffffffff 40`, /more elements than bytes/],
    ['array8 of 255 true', '005341 e0 02 ff 41', /more elements than bytes/],
    ['array32 of 2^32-1 uint0 inside a list', `c0 0b 01 f0 ${u32(5)} ffffffff 43`, /more elements than bytes/],
    ['array32 of ulong0', `f0 ${u32(5)} 7fffffff 44`, /more elements than bytes/],
    ['array32 of list0', `f0 ${u32(5)} 00010000 45`, /more elements than bytes/],
    ['array32 of false', `f0 ${u32(5)} 00010000 42`, /more elements than bytes/],
    ['array8 of smalluint with a short body', 'e0 04 05 52 01 02', /size does not match/],
    ['array32 of strings claiming more than its bytes', `f0 ${u32(7)} 00100000 a1 00 00`, /more elements than bytes/],
    ['list8 with 255 elements in 3 bytes', '005310 c0 04 ff 40 40 40', /more elements than bytes/],
    ['list32 with 2^32-1 elements', `005310 d0 ${u32(6)} ffffffff 40 40`, /more elements than bytes/],
    ['map8 with 200 entries', 'c1 03 c8 40 40', /more elements than bytes/],
    ['map32 with 2^32-1 entries', `d1 ${u32(6)} ffffffff 40 40`, /more elements than bytes/],
    ['a map with an odd count', 'c1 02 01 40', /odd count/],
    ['a list whose elements end before its size', 'c0 03 01 40 40', /size does not match/],
    ['a list whose size is smaller than its count', 'c0 00', /smaller than its count/],
    ['an element running past its list', 'c0 02 01 a1 05 41 42 43 44 45', /past/],
    ['an array with no element constructor', 'e0 01 00', /without its element constructor/],
    ['an unknown format code', '005310 c0 02 01 99', /unknown format code 0x99/],
    ['a truncated string', 'a1 09 414243', /past its end/],
    ['a descriptor and no value', '00 53 10', /truncated/],
  ])('%s', (_name, bytes, problem) => {
    expect(verdict(hex(bytes))).toMatch(problem);
  });

  test('nesting: descriptors, lists and arrays deeper than the bound, without recursion', () => {
    const descriptors = Buffer.concat([Buffer.alloc(60_000, 0x00), hex('40')]);
    expect(verdict(descriptors)).toMatch(/nested deeper than/);
    // list32s nested 20,000 deep, each size consistent with its content
    const depth = 20_000;
    const lists = Buffer.alloc(depth * 9 + 1, 0x40);
    for (let level = 0; level < depth; level += 1) {
      lists[level * 9] = 0xd0;
      lists.writeUInt32BE((depth - level) * 9 - 4, level * 9 + 1);
      lists.writeUInt32BE(1, level * 9 + 5);
    }
    expect(verdict(lists)).toMatch(/nested deeper than/);
    const arrays = Buffer.concat([Buffer.alloc(5000, 0), hex('e0 02 00 40')]);
    expect(verdict(Buffer.concat([hex(`f0 ${u32(arrays.length + 4)} 00000000`), arrays]))).toMatch(/nested deeper than/);

    const nested = (levels: number): Buffer => {
      let value = hex('40');
      for (let level = 0; level < levels; level += 1) value = Buffer.concat([hex('c0'), Buffer.from([value.length + 1, 1]), value]);
      return value;
    };
    expect(verdict(nested(MAX_NESTING - 1))).toBe('ok');
    expect(verdict(nested(MAX_NESTING + 1))).toMatch(/nested deeper than/);
  });
});

/** Typed AMQP values as rhea builds them, nested a few levels (well within MAX_NESTING). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const typedValue: fc.Arbitrary<any> = fc.letrec((tie) => ({
  leaf: fc.oneof(
    fc.constant(rheaTypes.Null()),
    fc.boolean().map((value) => rheaTypes.wrap_boolean(value)),
    fc.integer().map((value) => rheaTypes.wrap_int(value)),
    fc.nat().map((value) => rheaTypes.wrap_uint(value)),
    fc.maxSafeNat().map((value) => rheaTypes.wrap_ulong(value)),
    fc.double({ noNaN: true }).map((value) => rheaTypes.wrap_double(value)),
    fc.string({ maxLength: 300 }).map((value) => rheaTypes.wrap_string(value)),
    fc.stringMatching(/^[a-z:.-]{0,20}$/).map((value) => rheaTypes.wrap_symbol(value)),
    fc.uint8Array({ maxLength: 300 }).map((value) => rheaTypes.wrap_binary(Buffer.from(value))),
    fc.uint8Array({ minLength: 16, maxLength: 16 }).map((value) => rheaTypes.wrap_uuid(Buffer.from(value))),
    fc.date({ noInvalidDate: true }).map((value) => rheaTypes.wrap_timestamp(value.getTime())),
    fc.array(fc.stringMatching(/^[a-z]{0,8}$/), { maxLength: 5 }).map((value) => rheaTypes.wrap_array(value, 0xa3)),
    fc.array(fc.nat(255), { maxLength: 20 }).map((value) => rheaTypes.Array8(value, 0x50)),
    fc.integer({ min: 0, max: 4 }).map((count) => rheaTypes.Array8(Array(count).fill(null), 0x40)),
  ),
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, tie('leaf'), tie('list'), tie('map'), tie('described')),
  list: fc.array(tie('value'), { maxLength: 5 }).map((items) => (items.length === 0 ? rheaTypes.List0() : rheaTypes.List32(items))),
  map: fc.array(fc.tuple(fc.string({ maxLength: 10 }), tie('value')), { maxLength: 4 }).map((entries) =>
    rheaTypes.Map32(entries.flatMap(([key, value]) => [rheaTypes.wrap_string(key), value])),
  ),
  described: fc.tuple(fc.nat(0x80), tie('value')).map(([code, value]) => rheaTypes.described(rheaTypes.wrap_ulong(code), value)),
})).value;

/** Every object rhea builds while decoding, counted without recursion. */
function decodedNodes(bytes: Buffer): number {
  const reader = new rheaTypes.Reader(bytes);
  const pending: unknown[] = [];
  while (reader.remaining() > 0) pending.push(reader.read());
  let nodes = 0;
  while (pending.length > 0) {
    const node = pending.pop() as { value?: unknown; descriptor?: unknown } | unknown[];
    nodes += 1;
    if (Array.isArray(node)) pending.push(...node);
    else if (node && typeof node === 'object' && 'value' in node) {
      if (Array.isArray(node.value)) pending.push(...node.value);
      if (node.descriptor) pending.push(node.descriptor);
    }
  }
  return nodes;
}

describe('properties (seeded, bounded)', () => {
  test('(a) any byte string is accepted or refused with an EncodingError, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
        verdict(Buffer.from(bytes));
      }),
      { seed: 42, numRuns: 5000 },
    );
  });

  test('(b) whatever is accepted, rhea decodes without throwing, into at most ~2 objects per byte', () => {
    // Mutations of real encodings reach far more accepted inputs than random bytes do.
    const mutated = fc
      .tuple(typedValue, fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 4 }))
      .map(([value, edits]) => {
        const bytes = Buffer.from(encode(value));
        for (const [at, byte] of edits) if (bytes.length > 0) bytes[at % bytes.length] = byte;
        return bytes;
      });
    let accepted = 0;
    fc.assert(
      fc.property(fc.oneof(mutated, fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes))), (bytes) => {
        if (verdict(bytes) !== 'ok') return;
        accepted += 1;
        expect(decodedNodes(bytes)).toBeLessThanOrEqual(2 * bytes.length + 1);
      }),
      { seed: 42, numRuns: 3000 },
    );
    expect(accepted).toBeGreaterThan(300);
  });

  test("(c) rhea's own encodings are always accepted", () => {
    fc.assert(
      fc.property(typedValue, (value) => {
        expect(verdict(encode(value))).toBe('ok');
      }),
      { seed: 42, numRuns: 2000 },
    );
  });
});
