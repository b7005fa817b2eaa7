import { constants, createHash, publicEncrypt, randomBytes } from 'node:crypto';
import { Errors } from '@opendps/model';
import { rsaPublicKey, type RsaPublic } from './public';

/**
 * RSAES-OAEP encryption (RFC 8017, 7.1.1) of a seed to a TPM RSA key, as TPM2_MakeCredential and
 * TPM2_Duplicate do it (Part 1, B.10.3): hash = the key's nameAlg and the label includes its NUL
 * ("IDENTITY\0", "DUPLICATE\0"). The padding is built here and the RSA step left to node:crypto so
 * that the OAEP seed can be injected and whole activation blobs reproduced byte for byte.
 */
export function oaepEncrypt(
  key: RsaPublic,
  hash: { name: string; size: number },
  label: string,
  message: Uint8Array,
  oaepSeed: Uint8Array = randomBytes(hash.size),
): Buffer {
  const k = key.modulus.length;
  const hLen = hash.size;
  if (oaepSeed.length !== hLen) throw new RangeError(`The OAEP seed must be ${hLen} bytes.`);
  if (message.length > k - 2 * hLen - 2) {
    throw Errors.invalidTpmKey(`The RSA key is too small for a ${message.length}-byte secret.`);
  }
  const lHash = createHash(hash.name).update(Buffer.from(`${label}\0`, 'latin1')).digest();
  const db = Buffer.concat([lHash, Buffer.alloc(k - message.length - 2 * hLen - 2), Buffer.of(1), message]);
  const maskedDb = xor(db, mgf1(hash.name, oaepSeed, db.length));
  const maskedSeed = xor(Buffer.from(oaepSeed), mgf1(hash.name, maskedDb, hLen));
  const encoded = Buffer.concat([Buffer.of(0), maskedSeed, maskedDb]);
  try {
    return publicEncrypt({ key: rsaPublicKey(key), padding: constants.RSA_NO_PADDING }, encoded);
  } catch {
    throw Errors.invalidTpmKey('The RSA public key of the TPM key is not usable.');
  }
}

function mgf1(hash: string, seed: Uint8Array, length: number): Buffer {
  const blocks: Buffer[] = [];
  const counter = Buffer.alloc(4);
  for (let i = 0, total = 0; total < length; i++) {
    counter.writeUInt32BE(i);
    const block = createHash(hash).update(seed).update(counter).digest();
    blocks.push(block);
    total += block.length;
  }
  return Buffer.concat(blocks).subarray(0, length);
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}
