import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';

/**
 * AES-CFB with a zero IV, as the TPM uses it for credential, duplication and the DPS URI data.
 * OpenSSL's aes-*-cfb is full-block CFB128, which is the TPM's CFB (docs/tpm.md §4).
 */
export function aesCfbEncrypt(key: Uint8Array, plaintext: Uint8Array): Buffer {
  const cipher = createCipheriv(cfbName(key), key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(plaintext), cipher.final()]);
}

export function aesCfbDecrypt(key: Uint8Array, ciphertext: Uint8Array): Buffer {
  const decipher = createDecipheriv(cfbName(key), key, Buffer.alloc(16));
  return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
}

function cfbName(key: Uint8Array): string {
  if (key.length !== 16 && key.length !== 24 && key.length !== 32) throw new RangeError('AES keys are 16, 24 or 32 bytes.');
  return `aes-${key.length * 8}-cfb`;
}

export function hmac(hash: string, key: Uint8Array, ...parts: Uint8Array[]): Buffer {
  const mac = createHmac(hash, key);
  for (const part of parts) mac.update(part);
  return mac.digest();
}
