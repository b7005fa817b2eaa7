import { parseSasToken, tpm, verifySasToken } from '@opendps/attestation';
import { DpsError, Errors, type IndividualEnrollment } from '@opendps/model';
import { enrollments, type Collection, type Store } from '@opendps/store';
import { because } from './refusal';

/**
 * TPM attestation (docs/tpm.md §2): a device first registers with its EK and SRK only and is
 * answered with a challenge, the activation blob of a fresh key K1 that only its TPM can import; it
 * then signs its DPS SAS with K1 in the TPM. K1 lives in the store (so the answer may land on any
 * node) until the device has its final answer.
 *
 * Lifecycle of the challenge record (one per registration id):
 * - `issued` by a register without a token; lives `challengeTtlSeconds` (default 300).
 * - `answered` by the first register whose token verifies with K1 (compare-and-set, so a replayed
 *   or concurrent answer is refused); from then on it authenticates the device's polls, which carry
 *   the same K1-signed token (HTTPS as a plain SAS, AMQP as the SASL TPM proof); lives as long as
 *   an operation can be polled.
 * - deleted once the device was given its final answer (assigned, failed): K1 is of no use any
 *   more, the TPM replaced it with the hub key (K2) at the same handle.
 * A new challenge for the same registration id replaces the record, so only the latest K1 counts.
 */
export interface TpmChallengeRecord {
  registrationId: string;
  /** The EK the challenge was issued for (base64 TPM2B_PUBLIC, equal to the enrolled one). Public. */
  endorsementKey: string;
  /** The SRK the blob was wrapped to; the hub key blob is wrapped to it too. Public. */
  storageRootKey: string;
  /** Base64 K1. The one secret kept, and only while the registration is in flight. */
  identityKey: string;
  state: 'issued' | 'answered';
  /** Epoch ms after which the record no longer authenticates (the store's TTL removes it too). */
  expiresAt: number;
}

export const TPM_CHALLENGES = 'tpmChallenges';
/** Every DPS TPM client signs (and the C SDK copies from the 401 body) this key name. */
export const TPM_KEY_NAME = 'registration';

export function tpmChallenges(store: Store, idScope: string): Collection<TpmChallengeRecord> {
  return store.collection<TpmChallengeRecord>(idScope, TPM_CHALLENGES);
}

/**
 * The answer to a TPM register without a token: 401 carrying the activation blob. The HTTPS
 * front-end puts `authenticationKey` and `keyName` at the top of its error body (docs/device-wire.md, trap 8).
 */
export class TpmChallengeError extends DpsError {
  readonly keyName = TPM_KEY_NAME;

  constructor(readonly authenticationKey: string) {
    const base = Errors.unauthorized('Activate authenticationKey in the TPM and register again with a SAS token it signed.');
    super(base.status, base.errorCode, base.message);
    because('tpmChallengeIssued', this);
  }
}

export function isTpmChallengeError(error: unknown): error is TpmChallengeError {
  return error instanceof TpmChallengeError;
}

/** One refusal for an unknown registration id, a wrong EK and a non-TPM enrollment: nothing to enumerate. */
const noTpmEnrollment = () => because('unknownEnrollment', Errors.unauthorized('No TPM enrollment matches this registration id and endorsement key.'));
const noAnsweredChallenge = () =>
  because('tpmChallengeFailed', Errors.unauthorized('No answered TPM challenge is in flight for this registration id: register again to get a new one.'));
const challengeFailed = (message: string) => because('tpmChallengeFailed', Errors.unauthorized(message));

export interface TpmContext {
  store: Store;
  idScope: string;
  registrationId: string;
  now: Date;
  /** How long an issued challenge may be answered (default 300 s). */
  challengeTtlSeconds?: number;
  /** How long an answered challenge authenticates polls (default 1800 s, the operation lifetime). */
  answeredTtlSeconds?: number;
  /** Seconds the K1-signed token may be past its expiry (default: verifySasToken's). */
  skewSeconds?: number;
}

export interface TpmKeysSent {
  endorsementKey: string;
  storageRootKey?: string | undefined;
}

/** What a verified TPM proof establishes: the enrollment and the device's public keys. */
export interface TpmAttested {
  enrollment: IndividualEnrollment;
  keys: { endorsementKey: string; storageRootKey: string };
}

/**
 * Step 1: checks the EK against the individual enrollment (TPM has no groups; the SRK is never
 * checked, it changes with ownership), creates K1 and its blob, and records K1. Returns the base64 blob.
 */
export async function issueTpmChallenge(context: TpmContext, keys: TpmKeysSent): Promise<string> {
  const enrollment = await tpmEnrollment(context, keys.endorsementKey);
  if (keys.storageRootKey === undefined || keys.storageRootKey === '') {
    throw Errors.invalidTpmKey('A TPM registration must send tpm.storageRootKey: the challenge is wrapped to it.');
  }
  const { idScope, registrationId } = context;
  const challenge = tpm.createTpmChallenge({ endorsementKey: keys.endorsementKey, storageRootKey: keys.storageRootKey, registrationId, idScope });
  const ttlSeconds = context.challengeTtlSeconds ?? 300;
  await tpmChallenges(context.store, idScope).put(
    registrationId,
    {
      registrationId: enrollment.registrationId,
      endorsementKey: keys.endorsementKey,
      storageRootKey: keys.storageRootKey,
      identityKey: challenge.identityKey,
      state: 'issued',
      expiresAt: context.now.getTime() + ttlSeconds * 1000,
    },
    { ttlSeconds },
  );
  return challenge.authenticationKey;
}

/**
 * Step 2, the register that answers the challenge: the token must verify with the K1 of an issued,
 * unexpired challenge for the same EK and SRK. The challenge is then marked answered (compare-and-set),
 * so the same answer cannot start a second registration.
 */
export async function answerTpmChallenge(context: TpmContext, keys: TpmKeysSent, token: string): Promise<TpmAttested> {
  const sas = parseSasToken(token);
  const enrollment = await tpmEnrollment(context, keys.endorsementKey);
  const collection = tpmChallenges(context.store, context.idScope);
  const document = await collection.get(context.registrationId);
  const record = document?.value;
  if (!document || !record || record.expiresAt <= context.now.getTime()) {
    throw challengeFailed('No TPM challenge is pending for this registration id (it expired): register again without a token.');
  }
  if (record.state !== 'issued') throw challengeFailed('This TPM challenge was already answered: register again without a token.');
  if (!sameKey(record.endorsementKey, keys.endorsementKey) || keys.storageRootKey === undefined || !sameKey(record.storageRootKey, keys.storageRootKey)) {
    throw challengeFailed('The TPM keys differ from those the challenge was issued for.');
  }
  verifyWithIdentityKey(context, sas, record);
  const ttlSeconds = context.answeredTtlSeconds ?? 1800;
  await collection
    .put(context.registrationId, { ...record, state: 'answered', expiresAt: context.now.getTime() + ttlSeconds * 1000 }, { ifMatch: document.etag, ttlSeconds })
    .catch((error: unknown) => {
      if ((error as { status?: number }).status === 412) throw challengeFailed('This TPM challenge was already answered: register again without a token.');
      throw error;
    });
  return { enrollment, keys: { endorsementKey: record.endorsementKey, storageRootKey: record.storageRootKey } };
}

/**
 * A poll (or status lookup) by a TPM device: its token, the same it registered with, must verify
 * with the K1 of the answered challenge, and the enrollment must still hold the EK it was issued for.
 * `endorsementKey` is given when the transport carries it (AMQP SASL TPM), absent over HTTPS.
 */
export async function verifyTpmPoll(context: TpmContext, token: string, endorsementKey?: string): Promise<TpmAttested> {
  const sas = parseSasToken(token);
  const record = (await tpmChallenges(context.store, context.idScope).get(context.registrationId))?.value;
  if (!record || record.state !== 'answered' || record.expiresAt <= context.now.getTime()) throw noAnsweredChallenge();
  if (endorsementKey !== undefined && !sameKey(record.endorsementKey, endorsementKey)) throw noTpmEnrollment();
  const enrollment = await tpmEnrollment(context, record.endorsementKey);
  verifyWithIdentityKey(context, sas, record);
  return { enrollment, keys: { endorsementKey: record.endorsementKey, storageRootKey: record.storageRootKey } };
}

/** After the final answer K1 has no use: the TPM holds the hub key in its place. */
export async function discardTpmChallenge(store: Store, idScope: string, registrationId: string): Promise<void> {
  const collection = tpmChallenges(store, idScope);
  const record = (await collection.get(registrationId))?.value;
  if (record?.state === 'answered') await collection.delete(registrationId);
}

export interface TpmHubKeys {
  primaryKey: string;
  secondaryKey: string;
}

/** The hub key (K2) chosen for a TPM device, keyed by registration id. A secret, kept only a while. */
export interface TpmHubKeyRecord extends TpmHubKeys {
  registrationId: string;
}

export const TPM_HUB_KEYS = 'tpmHubKeys';

/**
 * Settles the hub key (K2) of a TPM device once, for every node: the first node to create the
 * record wins (create-if-absent), and each node then wraps and writes the stored key. Without it two
 * nodes finishing the same new device (a poll takeover while the first node still runs) could each
 * pick a random K2: the device would import one and the hub keep the other. The record outlives any
 * one assignment (default 1800 s); after that the hub's own key seeds the candidate again.
 */
export async function settleTpmHubKey(
  store: Store,
  idScope: string,
  registrationId: string,
  candidate: TpmHubKeys,
  ttlSeconds = 1800,
): Promise<TpmHubKeys> {
  const collection = store.collection<TpmHubKeyRecord>(idScope, TPM_HUB_KEYS);
  // A record that expires between the refused create and the read is created again (never in practice).
  for (let attempt = 0; attempt < 3; attempt++) {
    const stored = (await collection.get(registrationId))?.value;
    if (stored) return hubKeysOf(stored);
    try {
      await collection.put(registrationId, { registrationId, ...hubKeysOf(candidate) }, { ifNoneMatch: '*', ttlSeconds });
      return hubKeysOf(candidate);
    } catch (error) {
      if ((error as { status?: number }).status !== 409) throw error;
    }
  }
  throw Errors.internal('The TPM hub key could not be settled in the store.');
}

function hubKeysOf(keys: TpmHubKeys): TpmHubKeys {
  return { primaryKey: keys.primaryKey, secondaryKey: keys.secondaryKey };
}

/** The individual enrollment of this registration id, if it is a TPM one enrolled with exactly these EK bytes. */
async function tpmEnrollment(context: TpmContext, endorsementKey: string): Promise<IndividualEnrollment> {
  const enrollment = await enrollments(context.store, context.idScope).get(context.registrationId);
  const enrolled = enrollment?.attestation.type === 'tpm' ? enrollment.attestation.tpm?.endorsementKey : undefined;
  if (!enrollment || enrolled === undefined || !sameKey(enrolled, endorsementKey)) throw noTpmEnrollment();
  return enrollment;
}

function verifyWithIdentityKey(context: TpmContext, sas: ReturnType<typeof parseSasToken>, record: TpmChallengeRecord): void {
  // A token not signed with K1: the TPM did not (or could not) activate the challenge.
  const verify = () => verifySasToken(sas, {
    expectedResource: `${context.idScope}/registrations/${context.registrationId}`,
    keys: [record.identityKey],
    now: context.now,
    ...(context.skewSeconds !== undefined ? { skewSeconds: context.skewSeconds } : {}),
  });
  try {
    verify();
  } catch (error) {
    throw (error as { errorCode?: number }).errorCode === 401002 ? because('tpmChallengeFailed', error) : error;
  }
}

/** Byte equality of two base64 keys (the enrollment and the device may pad or wrap differently). */
function sameKey(a: string, b: string): boolean {
  const left = Buffer.from(a, 'base64');
  return left.length > 0 && left.equals(Buffer.from(b, 'base64'));
}
