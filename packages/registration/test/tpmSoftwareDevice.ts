import { createHash, createHmac, generateKeyPairSync, privateDecrypt, constants, timingSafeEqual, type KeyObject } from 'node:crypto';
import { tpm } from '@opendps/attestation';
import { softwareActivateCredential } from '../../../attestation/test/tpm/fixtures/softwareTpm';

/** The EK authPolicy of the SDK template: PolicySecret(TPM_RH_ENDORSEMENT) (docs/tpm.md §1). */
const EK_POLICY = Buffer.from('837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa', 'hex');

function rsaPublic(publicKey: KeyObject, objectAttributes: number, authPolicy: Buffer): tpm.RsaPublic {
  const jwk = publicKey.export({ format: 'jwk' });
  return {
    type: tpm.TPM_ALG.RSA,
    nameAlg: tpm.TPM_ALG.SHA256,
    objectAttributes,
    authPolicy,
    symmetric: { algorithm: tpm.TPM_ALG.AES, keyBits: 128, mode: tpm.TPM_ALG.CFB },
    scheme: { algorithm: tpm.TPM_ALG.NULL },
    keyBits: 2048,
    exponent: 0,
    modulus: Buffer.from(jwk.n as string, 'base64url'),
  };
}

/**
 * A TPM in software for registration tests: an EK and an SRK with the SDK templates whose private
 * keys we hold, ActivateCredential (the attestation fixture's oracle) and Import (Part 1 23.3.2:
 * outer HMAC and decryption with the SRK seed, inner integrity with the credential) done by hand,
 * every integrity check enforced as the TPM would. The real TPM (swtpm) is used end to end.
 */
export class SoftwareTpm {
  readonly endorsementKey: string;
  readonly storageRootKey: string;
  private readonly ek: { privateKey: KeyObject; key: tpm.StorageKey };
  private readonly srk: { privateKey: KeyObject; key: tpm.StorageKey };
  /** The HMAC key the last activation imported (the persistent ID key at 0x81000100). */
  private identityKey: Buffer | undefined;

  constructor() {
    const make = (attributes: number, policy: Buffer) => {
      const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const bytes = tpm.marshalTpm2bPublic(rsaPublic(publicKey, attributes, policy));
      return { privateKey, bytes, key: tpm.storageKey(bytes, 'software key') };
    };
    const ek = make(0x000300b2, EK_POLICY);
    const srk = make(0x00030472, Buffer.alloc(0));
    this.ek = ek;
    this.srk = srk;
    this.endorsementKey = ek.bytes.toString('base64');
    this.storageRootKey = srk.bytes.toString('base64');
  }

  /** What the SDK does with an authenticationKey: activate, import, persist the key. Returns it (for assertions). */
  activate(authenticationKey: string): Buffer {
    const fields = tpm.parseActivationBlob(Buffer.from(authenticationKey, 'base64'));
    const innerKey = softwareActivateCredential(this.ek.privateKey, this.ek.key, this.srk.key.name, fields.credentialBlob, fields.encryptedSecret);
    this.identityKey = this.import(fields, innerKey);
    return this.identityKey;
  }

  /** TPM2_HMAC with the imported key. */
  sign(message: string): Buffer {
    if (!this.identityKey) throw new Error('no identity key imported');
    return createHmac('sha256', this.identityKey).update(message, 'utf8').digest();
  }

  /** The DPS TPM SAS exactly as azure-iot-provisioning-device signs it: encoded sr, fields sr, sig, se, skn. */
  dpsToken(idScope: string, registrationId: string, expiry = Math.floor(Date.now() / 1000) + 3600): string {
    const sr = encodeURIComponent(`${idScope}/registrations/${registrationId}`);
    const sig = encodeURIComponent(this.sign(`${sr}\n${expiry}`).toString('base64'));
    return `SharedAccessSignature sr=${sr}&sig=${sig}&se=${expiry}&skn=registration`;
  }

  private import(fields: tpm.ActivationBlobFields, innerKey: Buffer): Buffer {
    const hash = 'sha256';
    const secret = new tpm.TpmReader(fields.inSymSeed, 'inSymSeed');
    const seed = privateDecrypt(
      { key: this.srk.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash, oaepLabel: Buffer.from('DUPLICATE\0') },
      secret.sized('secret', 512),
    );
    const publicArea = new tpm.TpmReader(fields.identityKeyPublic, 'idKeyPub');
    const idName = Buffer.concat([Buffer.from([0x00, 0x0b]), createHash(hash).update(publicArea.sized('public', 1024)).digest()]);

    const outer = new tpm.TpmReader(new tpm.TpmReader(fields.duplicate, 'dup').sized('TPM2B_PRIVATE', 0xffff), 'outer');
    const outerHmac = outer.sized('outerHMAC', 64);
    const encOuter = outer.take(outer.remaining, 'encOuter');
    const hmacKey = tpm.kdfa(hash, seed, 'INTEGRITY', Buffer.alloc(0), Buffer.alloc(0), 256);
    const expected = createHmac(hash, hmacKey).update(encOuter).update(idName).digest();
    if (!timingSafeEqual(expected, outerHmac)) throw new Error('TPM_RC_INTEGRITY: outer HMAC');
    const symKey = tpm.kdfa(hash, seed, 'STORAGE', idName, Buffer.alloc(0), 128);
    const inner = new tpm.TpmReader(tpm.aesCfbDecrypt(innerKey, tpm.aesCfbDecrypt(symKey, encOuter)), 'inner');
    const integrity = inner.sized('innerIntegrity', 64);
    const sensitiveStart = inner.position;
    const sensitive = new tpm.TpmReader(inner.sized('TPM2B_SENSITIVE', 0xffff), 'sensitive');
    const sensitiveBytes = inner.slice(sensitiveStart, inner.position);
    if (!timingSafeEqual(createHash(hash).update(sensitiveBytes).update(idName).digest(), integrity)) throw new Error('TPM_RC_INTEGRITY: inner');
    if (sensitive.u16('sensitiveType') !== tpm.TPM_ALG.KEYEDHASH) throw new Error('not a keyed hash');
    sensitive.sized('authValue', 64);
    const seedValue = sensitive.sized('seedValue', 64);
    const key = sensitive.sized('sensitive', 128);
    // The binding Import checks (TPM_RC_BINDING): unique = H(seedValue ‖ key); unique ends the public area.
    const unique = fields.identityKeyPublic.subarray(fields.identityKeyPublic.length - 32);
    if (!createHash(hash).update(seedValue).update(key).digest().equals(unique)) throw new Error('TPM_RC_BINDING');
    return Buffer.from(key);
  }
}
