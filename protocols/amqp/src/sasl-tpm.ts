import { isDpsError } from '@opendps/model';
import { parseRegistrationAddress, type RegistrationAddress } from './address';
import type { TpmChallenger } from './options';
import type { SaslServerMechanism } from './rhea';
import { refuse, succeed, type SaslContext } from './sasl-context';

/** The C client compares the 2-bit seq with an unmasked counter: at most 4 chunks work (docs/device-wire.md, trap 11). */
export const TPM_MAX_CHUNKS = 4;
/** Recommended 200-400 data bytes per chunk, so a ~800-byte blob fits 512-byte SASL frames. */
export const TPM_CHUNK_BYTES = 400;
const CONTROL = 0x80;
const LAST = 0x40;

/**
 * The activation blob as SASL challenges `control ‖ chunk`, control = 0x80 | last 0x40 | seq & 3
 * (docs/device-wire.md §3). Every chunk carries data, so no challenge is 1 byte long: Node takes
 * any 1-byte challenge for the SRK request.
 */
export function activationChallenges(blob: Buffer): Buffer[] {
  if (blob.length === 0) throw new Error('empty activation blob');
  const count = Math.min(TPM_MAX_CHUNKS, Math.ceil(blob.length / TPM_CHUNK_BYTES));
  const size = Math.ceil(blob.length / count);
  const challenges: Buffer[] = [];
  for (let seq = 0, at = 0; at < blob.length; seq += 1, at += size) {
    const last = at + size >= blob.length;
    const control = CONTROL | (last ? LAST : 0) | (seq & 0x03);
    challenges.push(Buffer.concat([Buffer.from([control]), blob.subarray(at, at + size)]));
  }
  return challenges;
}

interface TpmInit extends RegistrationAddress {
  endorsementKey: Buffer;
}

/** SASL-INIT: `0x00 ‖ idScope ‖ 0x00 ‖ registrationId ‖ 0x00 ‖ EK` (the EK may hold zero bytes). */
export function parseTpmInit(response: Buffer | undefined): TpmInit | undefined {
  if (!response || response[0] !== 0) return undefined;
  const afterScope = response.indexOf(0, 1);
  const afterId = afterScope < 0 ? -1 : response.indexOf(0, afterScope + 1);
  if (afterId < 0 || afterId + 1 >= response.length) return undefined;
  const address = parseRegistrationAddress(
    `${response.toString('utf8', 1, afterScope)}/registrations/${response.toString('utf8', afterScope + 1, afterId)}`,
  );
  return address ? { ...address, endorsementKey: Buffer.from(response.subarray(afterId + 1)) } : undefined;
}

/** A response `0x00 ‖ data`; the data of an acknowledgement is empty. */
function payloadOf(response: Buffer | undefined): Buffer | undefined {
  return response && response.length > 0 && response[0] === 0 ? response.subarray(1) : undefined;
}

type Phase =
  | { name: 'srk'; init: TpmInit }
  | { name: 'busy' }
  | { name: 'chunks'; init: TpmInit; storageRootKey: Buffer; pending: Buffer[] }
  | { name: 'sas'; init: TpmInit; storageRootKey: Buffer }
  | { name: 'done' };

/**
 * The SASL mechanism `TPM` (docs/device-wire.md §3, docs/tpm.md §2.2): init with the EK,
 * a 1-byte 0x00 challenge for the SRK, the activation blob in chunks, then the TPM SAS as the last
 * response. The SAS goes to the service as the TPM proof, like every other proof.
 */
export function tpmMechanism(context: SaslContext, challenger: TpmChallenger): SaslServerMechanism {
  let phase: Phase = { name: 'done' };
  const fail = (reason: string): undefined => {
    phase = { name: 'done' };
    return refuse(mechanism, context, 'TPM', reason);
  };

  const mechanism: SaslServerMechanism = {
    outcome: undefined,
    username: undefined,
    async start(response) {
      const init = parseTpmInit(response);
      if (!init) return fail('init is not 0x00 idScope 0x00 registrationId 0x00 EK');
      phase = { name: 'srk', init };
      return Buffer.from([0x00]);
    },
    async step(response) {
      const current = phase;
      const data = payloadOf(response);
      if (data === undefined) return fail(`malformed response in phase ${current.name}`);
      switch (current.name) {
        case 'srk': {
          if (data.length === 0) return fail('empty storage root key');
          const storageRootKey = Buffer.from(data);
          phase = { name: 'busy' };
          const blob = await issue(current.init, storageRootKey);
          if (!blob) return undefined;
          const [first, ...pending] = activationChallenges(blob);
          phase = pending.length > 0 ? { name: 'chunks', init: current.init, storageRootKey, pending } : { name: 'sas', init: current.init, storageRootKey };
          return first;
        }
        case 'chunks': {
          if (data.length !== 0) return fail('a non-final chunk is acknowledged with 0x00 alone');
          const [next, ...pending] = current.pending;
          phase = pending.length > 0 ? { ...current, pending } : { name: 'sas', init: current.init, storageRootKey: current.storageRootKey };
          return next;
        }
        case 'sas': {
          const token = data.toString('utf8');
          if (!token) return fail('empty SAS');
          const { init, storageRootKey } = current;
          phase = { name: 'done' };
          context.session.identity = {
            idScope: init.idScope,
            registrationId: init.registrationId,
            proof: { kind: 'tpm', endorsementKey: init.endorsementKey.toString('base64'), storageRootKey: storageRootKey.toString('base64'), token },
          };
          return succeed(mechanism, `${init.idScope}/registrations/${init.registrationId}`);
        }
        default:
          return fail(`unexpected response in phase ${current.name}`);
      }
    },
  };

  /** The challenger's refusal (a coded 4xx) is outcome `auth`; anything else is outcome `sys`. */
  async function issue(init: TpmInit, storageRootKey: Buffer): Promise<Buffer | undefined> {
    try {
      const blob = await challenger.challenge({ ...init, storageRootKey });
      if (blob.length === 0) throw new Error('the TPM challenger returned an empty activation blob');
      return blob;
    } catch (error) {
      if (isDpsError(error) && error.status < 500) return fail(`${error.errorCode} ${error.message}`);
      phase = { name: 'done' };
      context.logger.error({ err: String(error) }, 'TPM challenge failed');
      throw error;
    }
  }

  return mechanism;
}
