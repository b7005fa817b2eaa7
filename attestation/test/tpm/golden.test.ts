import { constants, createPrivateKey, generateKeyPairSync, privateDecrypt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tpm as tpmNamespace } from '@opendps/attestation';
import {
  buildActivationBlob,
  createTpmChallenge,
  duplicate,
  identityKey,
  IDENTITY_KEY_POLICY,
  kdfa,
  makeCredential,
  marshalTpm2bPublic,
  nameOf,
  oaepEncrypt,
  parseActivationBlob,
  parseTpm2bPublic,
  registrationIdFromEndorsementKey,
  storageKey,
  TPM_ALG,
  wrapTpmDeviceKey,
  type RsaPublic,
} from '../../src/tpm';

/**
 * Golden vectors from fixtures/golden.py: a second implementation in Python (KDFa confirmed there by
 * OpenSSL's KBKDF, OAEP by hand with pow()), over the EK and SRK of a real swtpm, with every random
 * value pinned. Names are also those `tpm2_readpublic -n` printed for the same keys.
 */
const fixtures = join(__dirname, 'fixtures');
const golden = JSON.parse(readFileSync(join(fixtures, 'golden.json'), 'utf8'));
const hexFixture = (name: string) => Buffer.from(readFileSync(join(fixtures, name), 'utf8').trim(), 'hex');
const ekBytes = hexFixture('ek.tpm2b.hex');
const srkBytes = hexFixture('srk.tpm2b.hex');
const ek = storageKey(ekBytes, 'The endorsement key');
const srk = storageKey(srkBytes, 'The storage root key');
const r = Object.fromEntries(Object.entries(golden.random as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'hex')]));
const hex = (b: Buffer) => b.toString('hex');

describe('TPM golden vectors', () => {
  it.each((golden.kdfa as Array<Record<string, string | number>>).map((v) => [v.label, v.bits, v] as const))(
    'KDFa %s %i bits',
    (_label, _bits, v) => {
      const out = kdfa('sha256', Buffer.from(v.key as string, 'hex'), v.label as string,
        Buffer.from(v.contextU as string, 'hex'), Buffer.from(v.contextV as string, 'hex'), v.bits as number);
      expect(hex(out)).toBe(v.expected);
    },
  );

  it('computes the Names tpm2_readpublic -n printed for the swtpm EK and SRK', () => {
    expect(hex(ek.name)).toBe(hexFixture('ek.name.hex').toString('hex'));
    expect(hex(srk.name)).toBe(hexFixture('srk.name.hex').toString('hex'));
    expect(hex(ek.name)).toBe(golden.names.ek);
    expect(hex(srk.name)).toBe(golden.names.srk);
  });

  it('parses the SDK EK template exactly (docs/tpm.md §1) and marshals it back byte for byte', () => {
    const parsed = parseTpm2bPublic(ekBytes);
    const pub = parsed.public as RsaPublic;
    expect(ekBytes.length).toBe(316);
    expect(pub).toMatchObject({ type: TPM_ALG.RSA, nameAlg: TPM_ALG.SHA256, objectAttributes: 0x000300b2, keyBits: 2048, exponent: 0 });
    expect(pub.symmetric).toEqual({ algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB });
    expect(pub.scheme).toEqual({ algorithm: TPM_ALG.NULL });
    expect(hex(pub.authPolicy)).toBe('837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa');
    expect(pub.modulus.length).toBe(256);
    expect(marshalTpm2bPublic(pub).equals(ekBytes)).toBe(true);
    expect(srkBytes.length).toBe(284);
    expect(parseTpm2bPublic(srkBytes).public.objectAttributes).toBe(0x00030472);
    expect(marshalTpm2bPublic(parseTpm2bPublic(srkBytes).public).equals(srkBytes)).toBe(true);
  });

  it('derives the default registration id', () => {
    expect(registrationIdFromEndorsementKey(ekBytes.toString('base64'))).toBe(golden.registrationId);
    expect(golden.registrationId).toHaveLength(52);
  });

  it('builds the ID key public and sensitive areas and its Name', () => {
    const id = identityKey(r.identityKey!, r.seedValue!);
    expect(hex(IDENTITY_KEY_POLICY)).toBe(golden.identityKey.policy);
    expect(hex(id.tpm2bPublic)).toBe(golden.identityKey.tpm2bPublic);
    expect(id.tpm2bPublic.length).toBe(82);
    expect(hex(id.sensitive)).toBe(golden.identityKey.sensitive);
    expect(id.sensitive.length).toBe(74);
    expect(hex(id.name)).toBe(golden.names.identityKey);
    expect(hex(nameOf(parseTpm2bPublic(id.tpm2bPublic)))).toBe(golden.names.identityKey);
  });

  it('MakeCredential: credential blob and encrypted secret', () => {
    const made = makeCredential(ek, srk.name, r.innerKey!, { seed: r.credentialSeed!, oaepSeed: r.credentialOaepSeed! });
    expect(hex(made.credentialBlob)).toBe(golden.makeCredential.credentialBlob);
    expect(made.credentialBlob.length).toBe(54);
    expect(hex(made.encryptedSecret)).toBe(golden.makeCredential.encryptedSecret);
    expect(made.encryptedSecret.length).toBe(258);
  });

  it('Duplicate: TPM2B_PRIVATE and the encrypted wrap key', () => {
    const dup = duplicate(srk, identityKey(r.identityKey!, r.seedValue!), r.innerKey!, {
      seed: r.duplicateSeed!,
      oaepSeed: r.duplicateOaepSeed!,
    });
    expect(hex(dup.duplicate)).toBe(golden.duplicate.duplicate);
    expect(dup.duplicate.length).toBe(144);
    expect(hex(dup.inSymSeed)).toBe(golden.duplicate.inSymSeed);
  });

  it('the whole activation blob, and createTpmChallenge / wrapTpmDeviceKey give the same bytes', () => {
    const random = {
      seedValue: r.seedValue!,
      innerKey: r.innerKey!,
      credentialSeed: r.credentialSeed!,
      credentialOaepSeed: r.credentialOaepSeed!,
      duplicateSeed: r.duplicateSeed!,
      duplicateOaepSeed: r.duplicateOaepSeed!,
    };
    const blob = buildActivationBlob({ endorsementKey: ek, storageRootKey: srk, hmacKey: r.identityKey!, uri: golden.uri, random });
    expect(blob.toString('base64')).toBe(golden.blob);
    expect(blob.length).toBe(798 + Buffer.byteLength(golden.uri));
    expect(hex(parseActivationBlob(blob).encryptedUri)).toBe(golden.encryptedUri);

    const [idScope, , registrationId] = (golden.uri as string).split('/');
    const keys = { endorsementKey: ekBytes.toString('base64'), storageRootKey: srkBytes.toString('base64'), idScope: idScope!, registrationId: registrationId! };
    const challenge = createTpmChallenge({ ...keys, random: { ...random, identityKey: r.identityKey! } });
    expect(challenge).toEqual({ authenticationKey: golden.blob, identityKey: r.identityKey!.toString('base64') });
    const rewrapped = wrapTpmDeviceKey({ ...keys, deviceKey: r.identityKey!.toString('base64'), random });
    expect(rewrapped).toEqual({ authenticationKey: golden.blob, deviceKey: r.identityKey!.toString('base64') });
    expect(tpmNamespace.createTpmChallenge).toBe(createTpmChallenge);
  });

  it('draws fresh randomness when none is injected', () => {
    const keys = { endorsementKey: ekBytes.toString('base64'), storageRootKey: srkBytes.toString('base64'), idScope: '0ne00000A0A', registrationId: 'dev-1' };
    const a = createTpmChallenge(keys);
    const b = createTpmChallenge(keys);
    expect(Buffer.from(a.identityKey, 'base64')).toHaveLength(32);
    expect(a.identityKey).not.toBe(b.identityKey);
    expect(a.authenticationKey).not.toBe(b.authenticationKey);
    const fields = parseActivationBlob(Buffer.from(a.authenticationKey, 'base64'));
    expect([fields.credentialBlob, fields.encryptedSecret, fields.duplicate, fields.inSymSeed, fields.identityKeyPublic].map((f) => f.length))
      .toEqual([54, 258, 144, 258, 82]);
    const hub = wrapTpmDeviceKey(keys);
    expect(Buffer.from(hub.deviceKey, 'base64')).toHaveLength(32);
    expect(hub.deviceKey).not.toBe(a.identityKey);
  });

  it('OAEP padding is standard: node:crypto decrypts it with the label including its NUL', () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = publicKey.export({ format: 'jwk' });
    const rsa: RsaPublic = {
      type: TPM_ALG.RSA, nameAlg: TPM_ALG.SHA256, objectAttributes: 0x000300b2, authPolicy: Buffer.alloc(0),
      symmetric: { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB }, scheme: { algorithm: TPM_ALG.NULL },
      keyBits: 2048, exponent: 0, modulus: Buffer.from(jwk.n!, 'base64url'),
    };
    const secret = Buffer.alloc(32, 0x5a);
    const encrypted = oaepEncrypt(rsa, { name: 'sha256', size: 32 }, 'IDENTITY', secret);
    const key = createPrivateKey(privateKey.export({ format: 'pem', type: 'pkcs8' }));
    const decrypt = (label: string) => privateDecrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: Buffer.from(label) }, encrypted);
    expect(decrypt('IDENTITY\0').equals(secret)).toBe(true);
    expect(() => decrypt('IDENTITY')).toThrow();
  });
});
