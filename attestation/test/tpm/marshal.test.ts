import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DpsError } from '@opendps/model';
import {
  base32Lower,
  createTpmChallenge,
  identityKey,
  marshalTpm2bPublic,
  marshalTpmtPublic,
  parseActivationBlob,
  parseTpm2bPublic,
  parseTpmtPublic,
  registrationIdFromEndorsementKey,
  storageKey,
  TPM_ALG,
  TpmReader,
  TpmWriter,
  wrapTpmDeviceKey,
  type EccPublic,
  type RsaPublic,
  type SymCipherPublic,
  type TpmPublic,
} from '../../src/tpm';

const fixtures = join(__dirname, 'fixtures');
const hexFixture = (name: string) => Buffer.from(readFileSync(join(fixtures, name), 'utf8').trim(), 'hex');
const ekBytes = hexFixture('ek.tpm2b.hex');
const srkBytes = hexFixture('srk.tpm2b.hex');
const ekRsa = parseTpm2bPublic(ekBytes).public as RsaPublic;
const keys = { endorsementKey: ekBytes.toString('base64'), storageRootKey: srkBytes.toString('base64'), idScope: '0ne00000A0A', registrationId: 'dev-1' };

/** The coded error `fn` throws; fails the test on success or on any other kind of throw. */
function codeOf(fn: () => unknown): number {
  try {
    fn();
  } catch (error) {
    if (!(error instanceof DpsError)) throw new Error(`expected a DpsError, got ${String(error)}`);
    return error.errorCode;
  }
  throw new Error('expected a DpsError, got success');
}

/** Re-sizes a TPMT_PUBLIC into a TPM2B_PUBLIC with a consistent outer size. */
const wrap = (tpmt: Buffer) => Buffer.concat([Buffer.from([tpmt.length >> 8, tpmt.length & 0xff]), tpmt]);

describe('TpmReader / TpmWriter', () => {
  it('reads big-endian integers and sized buffers, and refuses to read past the end with 400011', () => {
    const bytes = new TpmWriter().u8(1).u16(0x0203).u32(0x04050607).tpm2b(Buffer.from('abc')).toBuffer();
    expect(bytes.toString('hex')).toBe('0102030405060700036162 63'.replace(' ', ''));
    const r = new TpmReader(bytes, 'The test');
    expect([r.u8('a'), r.u16('b'), r.u32('c'), r.sized('d', 3).toString()]).toEqual([1, 0x0203, 0x04050607, 'abc']);
    r.end();
    expect(codeOf(() => r.u8('more'))).toBe(400011);
    expect(codeOf(() => new TpmReader(Buffer.of(0, 4, 1), 'x').sized('s', 10))).toBe(400011);
    expect(codeOf(() => new TpmReader(Buffer.of(0, 4, 1, 2, 3, 4), 'x').sized('s', 3))).toBe(400011);
    expect(codeOf(() => new TpmReader(Buffer.of(1), 'x').end())).toBe(400011);
    expect(() => new TpmWriter().tpm2b(Buffer.alloc(0x10000))).toThrow(RangeError);
  });

  it('names the structure and field in the message', () => {
    try {
      parseTpm2bPublic(ekBytes.subarray(0, 20), 'The endorsement key');
    } catch (error) {
      expect((error as DpsError).message).toMatch(/^The endorsement key declares 314 bytes of TPMT_PUBLIC but carries 18\.$/);
    }
    try {
      parseTpm2bPublic(wrap(ekBytes.subarray(2, 60)), 'The endorsement key');
    } catch (error) {
      expect((error as DpsError).message).toMatch(/^The endorsement key is truncated: unique \(modulus\)/);
    }
    expect.assertions(2);
  });
});

describe('TPM2B_PUBLIC parsing', () => {
  it('refuses every truncation of the EK, with the outer size left as is or made consistent', () => {
    for (let length = 0; length < ekBytes.length; length++) {
      expect(codeOf(() => parseTpm2bPublic(ekBytes.subarray(0, length)))).toBe(400011);
      if (length >= 2) expect(codeOf(() => parseTpm2bPublic(wrap(ekBytes.subarray(2, length))))).toBe(400011);
    }
  });

  it('refuses trailing bytes, a short outer size, and oversized fields', () => {
    expect(codeOf(() => parseTpm2bPublic(Buffer.concat([ekBytes, Buffer.of(0)])))).toBe(400011);
    expect(codeOf(() => parseTpm2bPublic(wrap(Buffer.concat([ekBytes.subarray(2), Buffer.of(0)]))))).toBe(400011);
    const modulus513 = marshalTpm2bPublic({ ...ekRsa, modulus: Buffer.alloc(513, 1) });
    expect(codeOf(() => parseTpm2bPublic(modulus513))).toBe(400011);
    const policy65 = marshalTpm2bPublic({ ...ekRsa, authPolicy: Buffer.alloc(65, 1) });
    expect(codeOf(() => parseTpm2bPublic(policy65))).toBe(400011);
    expect(codeOf(() => parseTpm2bPublic(Buffer.alloc(1025)))).toBe(400011);
    const unknownType = Buffer.from(ekBytes);
    unknownType.writeUInt16BE(0x0099, 2);
    expect(codeOf(() => parseTpm2bPublic(unknownType))).toBe(400011);
  });

  it('never throws anything but a 400011 on mutated or random input', () => {
    for (let i = 0; i < 2000; i++) {
      const mutated = Buffer.from(ekBytes);
      for (let n = 0; n < 1 + (i % 4); n++) mutated[Math.floor(Math.random() * 40)] = Math.floor(Math.random() * 256);
      for (const input of [mutated, randomBytes(i % 64)]) {
        try {
          parseTpm2bPublic(input);
        } catch (error) {
          expect(error).toBeInstanceOf(DpsError);
          expect((error as DpsError).errorCode).toBe(400011);
        }
      }
    }
  });

  it.each<[string, TpmPublic]>([
    ['an ECC P-256 EK', {
      type: TPM_ALG.ECC, nameAlg: TPM_ALG.SHA256, objectAttributes: 0x000300b2, authPolicy: Buffer.alloc(32, 7),
      symmetric: { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB }, scheme: { algorithm: TPM_ALG.NULL },
      curveId: 0x0003, kdf: { algorithm: TPM_ALG.NULL }, x: Buffer.alloc(32, 1), y: Buffer.alloc(32, 2),
    } satisfies EccPublic],
    ['an ECDAA signing key', {
      type: TPM_ALG.ECC, nameAlg: TPM_ALG.SHA256, objectAttributes: 0x00040072, authPolicy: Buffer.alloc(0),
      symmetric: null, scheme: { algorithm: TPM_ALG.ECDAA, hashAlg: TPM_ALG.SHA256, count: 3 },
      curveId: 0x0010, kdf: { algorithm: 0x0020, hashAlg: TPM_ALG.SHA256 }, x: Buffer.alloc(32, 1), y: Buffer.alloc(32, 2),
    } satisfies EccPublic],
    ['an XOR keyed hash', {
      type: TPM_ALG.KEYEDHASH, nameAlg: TPM_ALG.SHA1, objectAttributes: 0, authPolicy: Buffer.alloc(0),
      scheme: { algorithm: TPM_ALG.XOR, hashAlg: TPM_ALG.SHA256, kdf: 0x0022 }, unique: Buffer.alloc(20, 3),
    }],
    ['a symmetric cipher', {
      type: TPM_ALG.SYMCIPHER, nameAlg: TPM_ALG.SHA384, objectAttributes: 0x00020000, authPolicy: Buffer.alloc(0),
      symmetric: { algorithm: TPM_ALG.AES, keyBits: 256, mode: TPM_ALG.CFB }, unique: Buffer.alloc(48, 4),
    } satisfies SymCipherPublic],
    ['an RSAES key', { ...ekRsa, scheme: { algorithm: 0x0015 }, symmetric: null, objectAttributes: 0x00020072 }],
    ['the ID key', identityKey(Buffer.alloc(32, 9), Buffer.alloc(32, 8)).public],
  ])('round-trips %s', (_name, pub) => {
    const bytes = marshalTpm2bPublic(pub);
    const parsed = parseTpm2bPublic(bytes);
    expect(parsed.public).toEqual(pub);
    expect(parsed.marshalled.equals(marshalTpmtPublic(pub))).toBe(true);
    expect(parseTpmtPublic(parsed.marshalled)).toEqual(pub);
  });
});

describe('EK / SRK acceptance (RSA-2048, SHA-256, AES-128-CFB restricted decryption keys only)', () => {
  const refuse = (pub: TpmPublic) => codeOf(() => storageKey(marshalTpm2bPublic(pub), 'The endorsement key'));
  it.each<[string, TpmPublic]>([
    ['an ECC key', { type: TPM_ALG.ECC, nameAlg: TPM_ALG.SHA256, objectAttributes: 0x000300b2, authPolicy: Buffer.alloc(0),
      symmetric: { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB }, scheme: { algorithm: TPM_ALG.NULL },
      curveId: 3, kdf: { algorithm: TPM_ALG.NULL }, x: Buffer.alloc(32, 1), y: Buffer.alloc(32, 1) }],
    ['RSA-3072', { ...ekRsa, keyBits: 3072, modulus: Buffer.alloc(384, 0xc1) }],
    ['a modulus shorter than its keyBits', { ...ekRsa, modulus: ekRsa.modulus.subarray(1) }],
    ['nameAlg SHA-1', { ...ekRsa, nameAlg: TPM_ALG.SHA1 }],
    ['AES-256', { ...ekRsa, symmetric: { algorithm: TPM_ALG.AES, keyBits: 256, mode: TPM_ALG.CFB } }],
    ['no symmetric algorithm', { ...ekRsa, symmetric: null }],
    ['a scheme', { ...ekRsa, scheme: { algorithm: 0x0017, hashAlg: TPM_ALG.SHA256 } }],
    ['a signing key', { ...ekRsa, objectAttributes: 0x00050072 }],
    ['an unrestricted key', { ...ekRsa, objectAttributes: 0x000200b2 }],
  ])('refuses %s with 400011', (_name, pub) => {
    expect(refuse(pub)).toBe(400011);
  });

  it('accepts the SDK EK and SRK templates', () => {
    expect(storageKey(ekBytes, 'The endorsement key').symmetricKeyBits).toBe(128);
    expect(storageKey(srkBytes, 'The storage root key').name).toHaveLength(34);
  });
});

describe('challenge inputs', () => {
  it.each([
    ['not base64', 'not base64!'],
    ['empty', ''],
    ['not a string', 42],
    ['too long', 'A'.repeat(4000)],
    ['truncated', ekBytes.subarray(0, 100).toString('base64')],
    ['an RSA key of the wrong template', marshalTpm2bPublic({ ...ekRsa, nameAlg: TPM_ALG.SHA1 }).toString('base64')],
  ])('an endorsement key that is %s is a 400011 naming it', (_name, endorsementKey) => {
    expect(codeOf(() => createTpmChallenge({ ...keys, endorsementKey: endorsementKey as string }))).toBe(400011);
    expect(() => createTpmChallenge({ ...keys, endorsementKey: endorsementKey as string })).toThrow(/endorsement key/);
    expect(codeOf(() => wrapTpmDeviceKey({ ...keys, storageRootKey: endorsementKey as string }))).toBe(400011);
    expect(() => wrapTpmDeviceKey({ ...keys, storageRootKey: endorsementKey as string })).toThrow(/storage root key/);
    // The registration id only needs a well-formed TPM2B_PUBLIC, whatever its template.
    if (!/template/.test(_name)) expect(codeOf(() => registrationIdFromEndorsementKey(endorsementKey as string))).toBe(400011);
  });

  it('a device key to re-wrap must be base64 of 16 to 64 bytes (400006)', () => {
    for (const deviceKey of ['***', randomBytes(8).toString('base64'), randomBytes(65).toString('base64'), randomBytes(200).toString('base64')]) {
      expect(codeOf(() => wrapTpmDeviceKey({ ...keys, deviceKey }))).toBe(400006);
    }
    expect(wrapTpmDeviceKey({ ...keys, deviceKey: randomBytes(16).toString('base64') }).deviceKey).toHaveLength(24);
  });
});

describe('activation blob parsing', () => {
  const blob = Buffer.from(createTpmChallenge(keys).authenticationKey, 'base64');

  it('splits the six fields with the documented sizes, field 6 included', () => {
    const fields = parseActivationBlob(blob);
    expect(Object.values(fields).map((f) => f.length)).toEqual([54, 258, 144, 258, 82, 2 + '0ne00000A0A/registrations/dev-1'.length]);
    expect(Buffer.concat(Object.values(fields)).equals(blob)).toBe(true);
  });

  it('refuses truncated blobs and trailing bytes with 400011', () => {
    for (const length of [0, 1, 53, 54, 500, blob.length - 1]) {
      expect(codeOf(() => parseActivationBlob(blob.subarray(0, length)))).toBe(400011);
    }
    expect(codeOf(() => parseActivationBlob(Buffer.concat([blob, Buffer.of(0)])))).toBe(400011);
  });
});

describe('registration id', () => {
  it('base32 matches the RFC 4648 test vectors (lower case, no padding)', () => {
    const vectors: Array<[string, string]> = [['', ''], ['f', 'my'], ['fo', 'mzxq'], ['foo', 'mzxw6'], ['foob', 'mzxw6yq'], ['fooba', 'mzxw6ytb'], ['foobar', 'mzxw6ytboi']];
    for (const [input, output] of vectors) expect(base32Lower(Buffer.from(input))).toBe(output);
  });

  it('is 52 lower-case base32 characters and changes with the EK', () => {
    const id = registrationIdFromEndorsementKey(keys.endorsementKey);
    expect(id).toMatch(/^[a-z2-7]{52}$/);
    const other = marshalTpm2bPublic({ ...ekRsa, modulus: Buffer.alloc(256, 0xc3) }).toString('base64');
    expect(registrationIdFromEndorsementKey(other)).not.toBe(id);
  });
});

describe('unusable RSA material', () => {
  it.each([
    ['an even modulus', { ...ekRsa, modulus: Buffer.concat([Buffer.of(0x80), Buffer.alloc(255)]) }],
    ['exponent 1', { ...ekRsa, exponent: 1 }],
    ['an even exponent', { ...ekRsa, exponent: 65536 }],
  ])('%s is a 400011, not a crypto error', (_name, pub) => {
    expect(codeOf(() => createTpmChallenge({ ...keys, endorsementKey: marshalTpm2bPublic(pub).toString('base64') }))).toBe(400011);
  });

  it('an explicit odd exponent is used as given', () => {
    expect(() => createTpmChallenge({ ...keys, endorsementKey: marshalTpm2bPublic({ ...ekRsa, exponent: 65537 }).toString('base64') })).not.toThrow();
  });
});
