import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSasToken, parseSasToken, verifySasToken } from '@opendps/attestation';
import {
  createTpmChallenge,
  duplicate,
  identityKey,
  makeCredential,
  marshalTpm2bPublic,
  parseActivationBlob,
  registrationIdFromEndorsementKey,
  storageKey,
  TPM_ALG,
  wrapTpmDeviceKey,
  type ActivationBlobFields,
  type RsaPublic,
  type StorageKey,
} from '../../src/tpm';
import { CREDENTIAL_FILE_HEADER, softwareActivateCredential, splitCredentialFile } from './fixtures/softwareTpm';
import { requireBinaries, runTool, startSwtpm, ToolError, type Swtpm } from './fixtures/swtpm';

/**
 * Independent oracles (docs/tpm.md §6): a real TPM 2.0 (swtpm/libtpms) driven by tpm2-tools
 * activates our credentials and imports our duplicates, and tpm2-tools' own MakeCredential is opened
 * by a software ActivateCredential. Nothing here is skipped: without the binaries the suite fails.
 */
const EK_HANDLE = '0x81010001';
const SRK_HANDLE = '0x81000001';
const SRK_ATTRIBUTES = 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt';

let tpm: Swtpm;
let ekBytes: Buffer;
let srkBytes: Buffer;
let ek: StorageKey;
let srk: StorageKey;
let keys: { endorsementKey: string; storageRootKey: string; idScope: string; registrationId: string };

const file = (name: string) => join(tpm.dir, name);
const write = (name: string, data: Buffer) => writeFileSync(file(name), data);
const read = (name: string) => readFileSync(file(name));

beforeAll(async () => {
  tpm = await startSwtpm();
  // The device SDK's EK (the TCG default template, = dist/tpm.js) and SRK, persisted where it puts them.
  await tpm.run('tpm2_createek', ['-c', EK_HANDLE, '-G', 'rsa', '-u', 'ek.pub']);
  await tpm.run('tpm2_createprimary', ['-C', 'o', '-G', 'rsa2048:aes128cfb', '-g', 'sha256', '-a', SRK_ATTRIBUTES, '-c', 'srk.ctx']);
  await tpm.run('tpm2_evictcontrol', ['-C', 'o', '-c', 'srk.ctx', SRK_HANDLE]);
  await tpm.run('tpm2_flushcontext', ['-t']);
  await tpm.run('tpm2_readpublic', ['-c', EK_HANDLE, '-o', 'ek.tpm2b', '-n', 'ek.name']);
  await tpm.run('tpm2_readpublic', ['-c', SRK_HANDLE, '-o', 'srk.tpm2b', '-n', 'srk.name']);
  ekBytes = read('ek.tpm2b');
  srkBytes = read('srk.tpm2b');
  ek = storageKey(ekBytes, 'The endorsement key');
  srk = storageKey(srkBytes, 'The storage root key');
  keys = { endorsementKey: ekBytes.toString('base64'), storageRootKey: srkBytes.toString('base64'), idScope: '0ne00000A0A', registrationId: 'tpm-dev-1' };
}, 30_000);

afterAll(async () => {
  await tpm?.stop();
});

/** The device's ActivateCredential: SRK as the activate handle, EK authorised by PolicySecret(endorsement). */
async function activateCredential(fields: Pick<ActivationBlobFields, 'credentialBlob' | 'encryptedSecret'>): Promise<Buffer> {
  write('cred.in', Buffer.concat([CREDENTIAL_FILE_HEADER, fields.credentialBlob, fields.encryptedSecret]));
  await tpm.run('tpm2_startauthsession', ['--policy-session', '-S', 'session.ctx']);
  try {
    await tpm.run('tpm2_policysecret', ['-S', 'session.ctx', '-c', 'e']);
    await tpm.run('tpm2_activatecredential', ['-c', SRK_HANDLE, '-C', EK_HANDLE, '-i', 'cred.in', '-o', 'inner.bin', '-P', 'session:session.ctx']);
    return read('inner.bin');
  } finally {
    await tpm.run('tpm2_flushcontext', ['session.ctx']).catch(() => undefined);
  }
}

/** The device's Import + Load under the SRK, then TPM2_HMAC with the imported key. */
async function importAndSign(
  fields: Pick<ActivationBlobFields, 'duplicate' | 'inSymSeed' | 'identityKeyPublic'>,
  innerKey: Buffer,
  message: string,
): Promise<{ signature: Buffer; name: Buffer }> {
  write('id.pub', fields.identityKeyPublic);
  write('id.dup', fields.duplicate);
  write('id.seed', fields.inSymSeed);
  write('inner.key', innerKey);
  write('msg.bin', Buffer.from(message, 'utf8'));
  try {
    await tpm.run('tpm2_import', ['-C', SRK_HANDLE, '-u', 'id.pub', '-i', 'id.dup', '-s', 'id.seed', '-k', 'inner.key', '-r', 'id.priv']);
    await tpm.run('tpm2_load', ['-C', SRK_HANDLE, '-u', 'id.pub', '-r', 'id.priv', '-c', 'id.ctx', '-n', 'id.name']);
    await tpm.run('tpm2_hmac', ['-c', 'id.ctx', '-g', 'sha256', '-o', 'mac.bin', 'msg.bin']);
    return { signature: read('mac.bin'), name: read('id.name') };
  } finally {
    await tpm.run('tpm2_flushcontext', ['-t']).catch(() => undefined);
  }
}

async function tpmFailure(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ToolError);
  return (error as ToolError).stderr;
}

describe('swtpm + tpm2-tools oracles', () => {
  it('fails loudly, naming the apt packages, when the binaries are missing', () => {
    const path = process.env.PATH;
    process.env.PATH = tpm.dir;
    try {
      expect(() => requireBinaries()).toThrow('apt-get install -y swtpm swtpm-tools tpm2-tools');
    } finally {
      process.env.PATH = path;
    }
    expect(() => requireBinaries()).not.toThrow();
  });

  it('Names equal tpm2_readpublic -n; the registration id equals coreutils base32 of the EK digest', async () => {
    expect(ek.name.equals(read('ek.name'))).toBe(true);
    expect(srk.name.equals(read('srk.name'))).toBe(true);
    expect(ekBytes.length).toBe(316);
    expect(srkBytes.length).toBe(284);
    const { stdout } = await runTool('sh', ['-c', 'openssl dgst -sha256 -binary ek.tpm2b | base32 -w0'], { cwd: tpm.dir });
    const expected = stdout.toString().trim().replace(/=+$/, '').toLowerCase();
    expect(registrationIdFromEndorsementKey(keys.endorsementKey)).toBe(expected);
  });

  it('tpm2_print decodes the ID key public area we marshal', async () => {
    const id = identityKey(randomBytes(32));
    write('idkey.pub', id.tpm2bPublic);
    const { stdout } = await tpm.run('tpm2_print', ['-t', 'TPM2B_PUBLIC', 'idkey.pub']);
    const text = stdout.toString();
    expect(text).toMatch(/name-alg:\s+value: sha256/);
    expect(text).toMatch(/attributes:\s+value: userwithauth\|noda\|sign/);
    expect(text).toMatch(/type:\s+value: keyedhash/);
    expect(text).toMatch(/algorithm:\s+value: hmac/);
    expect(text).toContain(`authorization policy: ${id.public.authPolicy.toString('hex')}`);
  });

  it('Oracle B: the TPM activates our credential (bound to Name(SRK), encrypted to the EK)', async () => {
    const innerKey = randomBytes(16);
    const challenge = createTpmChallenge({ ...keys, random: { innerKey } });
    const fields = parseActivationBlob(Buffer.from(challenge.authenticationKey, 'base64'));
    expect((await activateCredential(fields)).equals(innerKey)).toBe(true);
  });

  it('Oracle B, negative: a credential bound to another Name is refused with TPM_RC_INTEGRITY', async () => {
    const wrong = makeCredential(ek, ek.name, randomBytes(16));
    const stderr = await tpmFailure(activateCredential(wrong));
    // TPM_RC_INTEGRITY (0x09F) on parameter 1
    expect(stderr).toMatch(/ErrorCode \(0x000001df\)/);
    expect(stderr).toMatch(/integrity check failed/);
  });

  it('Oracle C: the device flow (activate, import, load) yields a key whose TPM2_HMAC signs a DPS SAS that verifies with identityKey', async () => {
    const challenge = createTpmChallenge(keys);
    const fields = parseActivationBlob(Buffer.from(challenge.authenticationKey, 'base64'));
    const innerKey = await activateCredential(fields);
    expect(innerKey).toHaveLength(16);

    const resource = encodeURIComponent(`${keys.idScope}/registrations/${keys.registrationId}`);
    const expiry = Math.floor(Date.now() / 1000) + 3600;
    const { signature } = await importAndSign(fields, innerKey, `${resource}\n${expiry}`);
    const identity = Buffer.from(challenge.identityKey, 'base64');
    expect(signature.equals(createHmac('sha256', identity).update(`${resource}\n${expiry}`).digest())).toBe(true);

    // The token the device would send, signed by the TPM: verifies against identityKey only.
    const sig = encodeURIComponent(signature.toString('base64'));
    const token = parseSasToken(`SharedAccessSignature sr=${resource}&sig=${sig}&se=${expiry}&skn=registration`);
    const expectedResource = `${keys.idScope}/registrations/${keys.registrationId}`;
    expect(verifySasToken(token, { expectedResource, keys: [challenge.identityKey] })).toBe(0);
    expect(() => verifySasToken(token, { expectedResource, keys: [randomBytes(32).toString('base64')] })).toThrow();
  });

  it('Oracle C: tpm2_load reports the Name we computed for the ID key', async () => {
    const hmacKey = randomBytes(32);
    const seedValue = randomBytes(32);
    const innerKey = randomBytes(16);
    const id = identityKey(hmacKey, seedValue);
    const challenge = createTpmChallenge({ ...keys, random: { identityKey: hmacKey, seedValue, innerKey } });
    const fields = parseActivationBlob(Buffer.from(challenge.authenticationKey, 'base64'));
    const { name, signature } = await importAndSign(fields, innerKey, 'x');
    expect(name.equals(id.name)).toBe(true);
    expect(signature.equals(createHmac('sha256', hmacKey).update('x').digest())).toBe(true);
  });

  it('Oracle C, negative: a public area whose unique does not bind the sensitive data is refused with TPM_RC_BINDING', async () => {
    const seedValue = randomBytes(32);
    const real = identityKey(randomBytes(32), seedValue);
    const other = identityKey(randomBytes(32), seedValue);
    const innerKey = randomBytes(16);
    const dup = duplicate(srk, { name: other.name, sensitive: real.sensitive }, innerKey);
    const stderr = await tpmFailure(importAndSign({ ...dup, identityKeyPublic: other.tpm2bPublic }, innerKey, 'x'));
    // TPM_RC_BINDING = 0x0A5
    expect(stderr).toMatch(/ErrorCode \(0x000000a5\)/);
    expect(stderr).toMatch(/not cryptographically bound/);
  });

  it('the second blob carries the hub device key: a re-wrapped 64-byte key signs the hub SAS in the TPM', async () => {
    const deviceKey = randomBytes(64).toString('base64');
    const blob = wrapTpmDeviceKey({ ...keys, deviceKey });
    expect(blob.deviceKey).toBe(deviceKey);
    const fields = parseActivationBlob(Buffer.from(blob.authenticationKey, 'base64'));
    const innerKey = await activateCredential(fields);
    const resource = encodeURIComponent('localhost:8884/devices/tpm-dev-1');
    const expiry = Math.floor(Date.now() / 1000) + 3600;
    const { signature } = await importAndSign(fields, innerKey, `${resource}\n${expiry}`);
    const token = parseSasToken(
      createSasToken({ resource: 'localhost:8884/devices/tpm-dev-1', key: deviceKey, expiry, encodeResource: true }),
    );
    expect(token.signature).toBe(signature.toString('base64'));
    expect(verifySasToken(token, { expectedResource: 'localhost:8884/devices/tpm-dev-1', keys: [deviceKey] })).toBe(0);
  });

  describe('Oracle A: tpm2_makecredential -T none, opened by a software ActivateCredential', () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    let softEk: StorageKey;

    beforeAll(() => {
      // A software EK with the SDK's EK template around a modulus we hold the private key of.
      const template = ek.rsa;
      const soft: RsaPublic = { ...template, modulus: Buffer.from(publicKey.export({ format: 'jwk' }).n!, 'base64url') };
      const bytes = marshalTpm2bPublic(soft);
      softEk = storageKey(bytes, 'The software EK');
      write('softek.tpm2b', bytes);
      expect(softEk.rsa.type).toBe(TPM_ALG.RSA);
    });

    it('recovers the secret tpm2-tools protected for Name(SRK)', async () => {
      const secret = randomBytes(16);
      write('secret.bin', secret);
      await runTool(
        'tpm2_makecredential',
        ['-T', 'none', '-u', 'softek.tpm2b', '-s', 'secret.bin', '-n', srk.name.toString('hex'), '-o', 'soft.cred'],
        { cwd: tpm.dir },
      );
      const { credentialBlob, encryptedSecret } = splitCredentialFile(read('soft.cred'));
      expect(softwareActivateCredential(privateKey, softEk, srk.name, credentialBlob, encryptedSecret).equals(secret)).toBe(true);
      expect(() => softwareActivateCredential(privateKey, softEk, ek.name, credentialBlob, encryptedSecret)).toThrow(/INTEGRITY/);
    });

    it('opens our MakeCredential the same way, and both have the same layout', async () => {
      const secret = randomBytes(16);
      const ours = makeCredential(softEk, srk.name, secret);
      expect(softwareActivateCredential(privateKey, softEk, srk.name, ours.credentialBlob, ours.encryptedSecret).equals(secret)).toBe(true);
      const theirs = splitCredentialFile(read('soft.cred'));
      expect([ours.credentialBlob.length, ours.encryptedSecret.length]).toEqual([theirs.credentialBlob.length, theirs.encryptedSecret.length]);
    });
  });
});
