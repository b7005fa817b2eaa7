import { randomBytes } from 'node:crypto';
import { Errors } from '@opendps/model';
import { buildActivationBlob, type ActivationRandom } from './activation';
import { LIMITS } from './constants';
import { decodeBase64 } from './encoding';
import { storageKey } from './storageKey';

export interface TpmDeviceKeys {
  /** `tpm.endorsementKey` as the device sent it: base64 TPM2B_PUBLIC. */
  endorsementKey: string;
  /** `tpm.storageRootKey` as the device sent it (never checked against the enrollment: it changes with ownership). */
  storageRootKey: string;
  registrationId: string;
  idScope: string;
}

export interface TpmChallengeRandom extends ActivationRandom {
  /** The HMAC key itself (K1: 32 bytes; K2: the hub key when none is given). */
  identityKey?: Buffer;
}

export interface TpmChallenge {
  /** Base64 activation blob for the 401 body (`authenticationKey`) or the SASL TPM challenge chunks. */
  authenticationKey: string;
  /** Base64 K1: the key the device's DPS SAS token must verify with; keep it while the operation is in flight. */
  identityKey: string;
}

/**
 * The TPM challenge (docs/tpm.md §2): a fresh 32-byte K1 (as DrsServer picks it) wrapped so that
 * only the TPM holding this EK and SRK can import it. Pure: storing K1 is the caller's business.
 * Checking the EK against the enrollment is the caller's business too; a malformed or unsupported
 * EK or SRK is a 400011.
 */
export function createTpmChallenge(options: TpmDeviceKeys & { random?: TpmChallengeRandom }): TpmChallenge {
  const { random = {} } = options;
  const key = random.identityKey ?? randomBytes(32);
  return { authenticationKey: blobFor(options, key, random), identityKey: key.toString('base64') };
}

export interface TpmDeviceKeyBlob {
  /** Base64 blob for `registrationState.tpm.authenticationKey`. */
  authenticationKey: string;
  /** Base64 K2: the hub device's primary symmetric key, which the TPM now holds. */
  deviceKey: string;
}

/**
 * The second blob (docs/tpm.md §5): wraps K2, the hub device's primary key, with fresh seeds
 * and inner key. Give `deviceKey` to re-wrap the key a device already has at its hub (re-registration
 * to the same hub keeps its hub identity valid); without it K2 is 32 new random bytes.
 */
export function wrapTpmDeviceKey(
  options: TpmDeviceKeys & { deviceKey?: string; random?: TpmChallengeRandom },
): TpmDeviceKeyBlob {
  const { random = {} } = options;
  let key: Buffer;
  if (options.deviceKey !== undefined) {
    key = decodeBase64(options.deviceKey, 'The device key', LIMITS.symData, Errors.invalidSymmetricKey);
    // Hub symmetric keys are 16 to 64 bytes (as in enrollments); a TPM HMAC key holds them all.
    if (key.length < 16 || key.length > 64) throw Errors.invalidSymmetricKey('A TPM device key must be 16 to 64 bytes.');
  } else {
    key = random.identityKey ?? randomBytes(32);
  }
  return { authenticationKey: blobFor(options, key, random), deviceKey: key.toString('base64') };
}

function blobFor(keys: TpmDeviceKeys, hmacKey: Buffer, random: ActivationRandom): string {
  const endorsementKey = storageKey(decodeBase64(keys.endorsementKey, 'The endorsement key', LIMITS.publicArea), 'The endorsement key');
  const storageRootKey = storageKey(decodeBase64(keys.storageRootKey, 'The storage root key', LIMITS.publicArea), 'The storage root key');
  return buildActivationBlob({
    endorsementKey,
    storageRootKey,
    hmacKey,
    // Field 6: DrsServer encrypts a URI here; devices only log or skip it.
    uri: `${keys.idScope}/registrations/${keys.registrationId}`,
    random,
  }).toString('base64');
}
