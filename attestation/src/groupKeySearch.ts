import { createHash } from 'node:crypto';
import type { SasToken } from './sas';
import { hmacFromStates, hmacKeyStates, hmacKeyStatesOfWords, paddedBlocks } from './sha256';

/**
 * Which symmetric-key enrollment groups could have issued a device's SAS token. The token does not
 * name its group: the device key is HMAC(group key, registration id) and signs the token, so the
 * only way to find the group is to derive the key from each group key and sign again, two HMACs per
 * group key (docs/service-rest.md §14, docs/scale.md). This does exactly that and no more: each
 * group key's HMAC states are computed once, primary keys are tried before secondary keys (devices
 * sign with the primary unless it is being rolled), and nothing is allocated per group.
 *
 * A hit is a candidate, not a verdict: the caller verifies it with node:crypto (attest.ts).
 */
export interface SymmetricKeyGroupKeys {
  enrollmentGroupId: string;
  primaryKey: string;
  secondaryKey: string;
}

/** Words per group: the inner and outer states of the primary key, then those of the secondary. */
const STRIDE = 32;

export class GroupKeySearch {
  private readonly ids: string[];
  private readonly states: Int32Array;
  /** Whether a group's secondary key differs from its primary (else it is not tried twice). */
  private readonly secondDiffers: Uint8Array;

  /** `groups` in the order they are tried (within the primary pass, then the secondary). */
  constructor(groups: readonly SymmetricKeyGroupKeys[]) {
    this.ids = groups.map((group) => group.enrollmentGroupId);
    this.states = new Int32Array(groups.length * STRIDE);
    this.secondDiffers = new Uint8Array(groups.length);
    groups.forEach((group, i) => {
      const primary = hmacKey(group.primaryKey);
      const secondary = hmacKey(group.secondaryKey);
      hmacKeyStates(primary, this.states, i * STRIDE);
      hmacKeyStates(secondary, this.states, i * STRIDE + 16);
      this.secondDiffers[i] = Buffer.compare(primary, secondary) === 0 ? 0 : 1;
    });
  }

  get size(): number {
    return this.ids.length;
  }

  /**
   * The ids of the groups one of whose keys derives the key that signed `token` for
   * `registrationId`: every primary key first, then every secondary key, each in construction order.
   */
  *candidates(token: SasToken, registrationId: string): Generator<string> {
    // What a key must produce, as 8 words; a signature that is not the canonical base64 of 32 bytes
    // never equals the base64 of an HMAC-SHA256, which is how sas.ts compares them.
    const signature = Buffer.from(token.signature, 'base64');
    if (signature.length !== 32 || signature.toString('base64') !== token.signature) return;
    const expected = new Int32Array(8);
    for (let i = 0; i < 8; i++) expected[i] = signature.readInt32BE(i * 4);

    const id = paddedBlocks(Buffer.from(registrationId, 'utf8'), 64);
    const signed = paddedBlocks(Buffer.from(`${token.resource}\n${token.expiry}`, 'utf8'), 64);
    const deviceKey = new Int32Array(8);
    const deviceKeyStates = new Int32Array(16);
    const result = new Int32Array(8);
    for (const pass of [0, 16]) {
      for (let group = 0; group < this.ids.length; group++) {
        if (pass === 16 && this.secondDiffers[group] === 0) continue;
        hmacFromStates(this.states, group * STRIDE + pass, id, deviceKey, 0);
        hmacKeyStatesOfWords(deviceKey, 0, deviceKeyStates, 0);
        hmacFromStates(deviceKeyStates, 0, signed, result, 0);
        let difference = 0;
        for (let i = 0; i < 8; i++) difference |= (result[i] as number) ^ (expected[i] as number);
        if (difference === 0) yield this.ids[group] as string;
      }
    }
  }
}

/** The HMAC key bytes of a base64 key as sas.ts decodes it; a key over one block is hashed first, as HMAC does. */
function hmacKey(key: string): Buffer {
  const bytes = Buffer.from(key, 'base64');
  return bytes.length > 64 ? createHash('sha256').update(bytes).digest() : bytes;
}
