import { encodeRemainingLength } from '../src/mqtt-packet-size';

/** The one remaining-length encoder (the console's MQTT client, the fuzz corpus and the property tests use it). */
describe('encodeRemainingLength', () => {
  test('writes the remaining length in 1 to 4 bytes (MQTT 3.1.1 §2.2.3) and refuses what does not fit', () => {
    expect(encodeRemainingLength(0)).toEqual([0]);
    expect(encodeRemainingLength(127)).toEqual([0x7f]);
    expect(encodeRemainingLength(128)).toEqual([0x80, 0x01]);
    expect(encodeRemainingLength(16_383)).toEqual([0xff, 0x7f]);
    expect(encodeRemainingLength(16_384)).toEqual([0x80, 0x80, 0x01]);
    expect(encodeRemainingLength(268_435_455)).toEqual([0xff, 0xff, 0xff, 0x7f]);
    expect(() => encodeRemainingLength(268_435_456)).toThrow(RangeError);
    expect(() => encodeRemainingLength(-1)).toThrow(RangeError);
  });
});
