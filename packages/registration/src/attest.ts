import {
  deriveDeviceKey,
  matchX509Enrollment,
  parseClientChain,
  parseSasToken,
  signatureMatches,
  verifySasToken,
  type SasToken,
  type X509EnrollmentSource,
} from '@opendps/attestation';
import {
  Errors,
  type DeviceRegistrationState,
  type EnrollmentGroup,
  type IndividualEnrollment,
  type X509CertificateInfo,
} from '@opendps/model';
import { caCertificates, enrollmentGroups, enrollments, registrations, type Store } from '@opendps/store';
import { symmetricKeyGroupSearch } from './group-keys';
import { because, x509Reason } from './refusal';
import { answerTpmChallenge, issueTpmChallenge, TpmChallengeError, verifyTpmPoll, type TpmAttested } from './tpm';
import type { Proof } from './types';

/** Who a device proved to be: enough to finish its registration on any node. Holds no secrets. */
export interface AttestedDevice {
  registrationId: string;
  deviceId: string;
  enrollment: { kind: 'individual'; registrationId: string } | { kind: 'group'; enrollmentGroupId: string };
  attestationType: 'symmetricKey' | 'x509' | 'tpm';
  x509?: {
    /** Upper-case SHA-256 thumbprint of the leaf: the device's identity at the hub. */
    thumbprint: string;
    certificateInfo: X509CertificateInfo;
    signingCertificateInfo?: X509CertificateInfo;
  };
  /** The TPM's public keys: the hub key blob is wrapped to them (any node may finish the work). */
  tpm?: { endorsementKey: string; storageRootKey: string };
}

export interface Attestation {
  attested: AttestedDevice;
  enrollment: IndividualEnrollment | EnrollmentGroup;
  /**
   * A group device's keys as derived from its group's keys while verifying its token: its hub
   * identity carries the same keys, derived once. In memory only (never in an operation record).
   */
  derivedKeys?: { primaryKey: string; secondaryKey: string };
  /**
   * The registration state as attestation read it (a group device's, to find the group it came
   * through): `assign` uses it instead of reading it again. Absent when attestation did not read it.
   */
  previousState?: { value: DeviceRegistrationState | undefined };
}

export interface AttestContext {
  store: Store;
  idScope: string;
  registrationId: string;
  now: Date;
  /**
   * `register` consumes a TPM challenge (its answer starts one registration); `poll` (the default:
   * operation status, registration status) only checks the token against the answered challenge.
   */
  purpose?: 'register' | 'poll';
  /** TPM challenge lifetimes (tpm.ts). */
  tpmChallengeTtlSeconds?: number;
  tpmAnsweredTtlSeconds?: number;
  /** Seconds a SAS token may be past its expiry (default: verifySasToken's 300). */
  sasSkewSeconds?: number;
}

/** Step 4 of the flow: find the enrollment that matches the device and verify its proof. */
export async function attest(context: AttestContext, proof: Proof): Promise<Attestation> {
  switch (proof.kind) {
    case 'sas':
      return attestSymmetricKey(context, proof.token);
    case 'x509':
      return attestX509(context, proof.chain);
    case 'tpm':
      return attestTpm(context, proof);
    default:
      throw because('noCredentials', Errors.unauthorized('The device presented no credentials: a SAS token or a client certificate is required.'));
  }
}

/**
 * Symmetric keys: the individual enrollment of that registration id first, then the symmetric-key
 * groups, whose per-device keys are derived from the group keys (docs/service-rest.md §14). The proof is
 * verified before anything about the enrollment (disabled or not) is revealed.
 */
async function attestSymmetricKey(context: AttestContext, token: string): Promise<Attestation> {
  const { store, idScope, registrationId, now } = context;
  const sas = parseSasToken(token);
  const expectedResource = `${idScope}/registrations/${registrationId}`;

  const individual = await enrollments(store, idScope).get(registrationId);
  if (individual?.attestation.type === 'tpm') {
    // A register must carry the TPM keys (HTTPS body, AMQP SASL TPM): the K1-signed token alone
    // would otherwise start registrations after its challenge was answered.
    if (context.purpose === 'register') throw because('wrongAttestation', Errors.unauthorized('A TPM device registers with its TPM keys (tpm.endorsementKey and tpm.storageRootKey).'));
    // Its HTTPS polls carry only the token it signed with K1 (docs/device-wire.md §4).
    return tpmAttestation(context, await verifyTpmPoll(tpmContext(context), token));
  }
  if (individual) {
    const keys = individual.attestation.symmetricKey;
    if (!keys) throw because('wrongAttestation', Errors.invalidSignature('The enrollment of this registration id does not use symmetric keys.'));
    // A signature that matches neither enrollment key is a wrong key; expiry and resource say so by code.
    withReason('wrongKey', () => verifySasToken(sas, { expectedResource, keys: [keys.primaryKey, keys.secondaryKey], now, ...skew(context) }));
    return {
      enrollment: individual,
      attested: {
        registrationId,
        deviceId: individual.deviceId ?? registrationId,
        enrollment: { kind: 'individual', registrationId: individual.registrationId },
        attestationType: 'symmetricKey',
      },
    };
  }

  // The group this registration id came through last time is tried first and verified like any
  // other: a device registering again costs one group read, not one HMAC per group (docs/scale.md).
  const previousState = { value: await registrations(store, idScope).get(registrationId) };
  const remembered = await rememberedGroup(store, idScope, previousState.value);
  const again = remembered && groupAttestation(context, sas, remembered);
  if (again) return { ...again, previousState };
  // A new device: its group is found among this node's copy of the group keys (group-keys.ts), and
  // the group it names is read and verified here like any other.
  const search = await symmetricKeyGroupSearch(store, idScope);
  for (const enrollmentGroupId of search.candidates(sas, registrationId)) {
    const group = await enrollmentGroups(store, idScope).get(enrollmentGroupId);
    const matched = group && groupAttestation(context, sas, group);
    if (matched) return { ...matched, previousState };
  }
  // No individual enrollment, and no group key derives a key this token was signed with.
  throw because('unknownEnrollment', Errors.invalidSignature());
}

/** The symmetric-key group named by this registration id's last registration state, if it still exists. */
async function rememberedGroup(store: Store, idScope: string, previous: DeviceRegistrationState | undefined): Promise<EnrollmentGroup | undefined> {
  const groupId = previous?.symmetricKey?.enrollmentGroupId;
  return groupId ? enrollmentGroups(store, idScope).get(groupId) : undefined;
}

/**
 * The attestation through `group` when the token was signed with a key derived from one of its keys;
 * undefined when it was not (the caller tries the next group). Expiry and resource then throw.
 */
function groupAttestation(context: AttestContext, sas: SasToken, group: EnrollmentGroup): Attestation | undefined {
  const groupKeys = group.attestation.type === 'symmetricKey' ? group.attestation.symmetricKey : undefined;
  if (!groupKeys) return undefined;
  const { registrationId, idScope, now } = context;
  const keys = [deriveDeviceKey(groupKeys.primaryKey, registrationId), deriveDeviceKey(groupKeys.secondaryKey, registrationId)];
  if (!keys.some((key) => signatureMatches(sas, key))) return undefined;
  verifySasToken(sas, { expectedResource: `${idScope}/registrations/${registrationId}`, keys, now, ...skew(context) });
  return {
    enrollment: group,
    derivedKeys: { primaryKey: keys[0] as string, secondaryKey: keys[1] as string },
    attested: {
      registrationId,
      deviceId: registrationId,
      enrollment: { kind: 'group', enrollmentGroupId: group.enrollmentGroupId },
      attestationType: 'symmetricKey',
    },
  };
}

/** Runs a check; a 401002 it throws is tagged `reason` (other codes carry their own). */
function withReason<T>(reason: 'wrongKey', check: () => T): T {
  try {
    return check();
  } catch (error) {
    throw (error as { errorCode?: number }).errorCode === 401002 ? because(reason, error) : error;
  }
}

/**
 * TPM (docs/tpm.md §2): without a token the device is challenged (a 401 carrying the blob);
 * with one, a register answers the challenge and a poll proves it still holds K1.
 */
async function attestTpm(context: AttestContext, proof: Extract<Proof, { kind: 'tpm' }>): Promise<Attestation> {
  const keys = { endorsementKey: proof.endorsementKey, storageRootKey: proof.storageRootKey };
  const tpm = tpmContext(context);
  if (proof.token === undefined || proof.token === '') throw new TpmChallengeError(await issueTpmChallenge(tpm, keys));
  const attested =
    context.purpose === 'register' ? await answerTpmChallenge(tpm, keys, proof.token) : await verifyTpmPoll(tpm, proof.token, proof.endorsementKey);
  return tpmAttestation(context, attested);
}

function tpmContext(context: AttestContext) {
  return {
    store: context.store,
    idScope: context.idScope,
    registrationId: context.registrationId,
    now: context.now,
    ...(context.tpmChallengeTtlSeconds !== undefined ? { challengeTtlSeconds: context.tpmChallengeTtlSeconds } : {}),
    ...(context.tpmAnsweredTtlSeconds !== undefined ? { answeredTtlSeconds: context.tpmAnsweredTtlSeconds } : {}),
    ...skew(context),
  };
}

function skew(context: AttestContext): { skewSeconds?: number } {
  return context.sasSkewSeconds !== undefined ? { skewSeconds: context.sasSkewSeconds } : {};
}

function tpmAttestation(context: AttestContext, { enrollment, keys }: TpmAttested): Attestation {
  return {
    enrollment,
    attested: {
      registrationId: context.registrationId,
      deviceId: enrollment.deviceId ?? context.registrationId,
      enrollment: { kind: 'individual', registrationId: enrollment.registrationId },
      attestationType: 'tpm',
      tpm: keys,
    },
  };
}

/** X.509: the chain presented in TLS, matched individual first, then groups up the chain (docs/service-rest.md §14). */
async function attestX509(context: AttestContext, chain: Buffer[]): Promise<Attestation> {
  const { store, idScope, registrationId, now } = context;
  const match = await matchX509Enrollment(parseClientChain(chain), x509Source(store, idScope), { registrationId, now }).catch((error: unknown) => {
    throw (error as { errorCode?: number }).errorCode === 401002 ? because(x509Reason((error as Error).message), error) : error;
  });
  const { certificateInfo, signingCertificateInfo } = match.x509;
  if (!certificateInfo) throw Errors.invalidClientCertificate();
  const x509 = {
    thumbprint: certificateInfo.sha256Thumbprint,
    certificateInfo,
    ...(signingCertificateInfo ? { signingCertificateInfo } : {}),
  };
  if (match.kind === 'individual') {
    return {
      enrollment: match.enrollment,
      attested: {
        registrationId,
        deviceId: match.deviceId,
        enrollment: { kind: 'individual', registrationId: match.enrollment.registrationId },
        attestationType: 'x509',
        x509,
      },
    };
  }
  return {
    enrollment: match.group,
    attested: {
      registrationId,
      deviceId: match.deviceId,
      enrollment: { kind: 'group', enrollmentGroupId: match.group.enrollmentGroupId },
      attestationType: 'x509',
      x509,
    },
  };
}

/** The indexed lookups X.509 matching needs, over the store repositories. */
function x509Source(store: Store, idScope: string): X509EnrollmentSource {
  const individuals = enrollments(store, idScope);
  const groups = enrollmentGroups(store, idScope);
  const cas = caCertificates(store, idScope);
  return {
    enrollmentsByClientThumbprint: (thumbprint) => individuals.findByThumbprint(thumbprint),
    groupsBySigningThumbprint: (thumbprint) => groups.findByThumbprint(thumbprint),
    groupsBySigningSubject: (subject) => groups.findBySigningSubject(subject),
    groupsByCaReference: (name) => groups.findByCaReference(name),
    caCertificatesByThumbprint: (thumbprint) => cas.findByThumbprint(thumbprint),
    caCertificatesBySubject: (subject) => cas.findBySubject(subject),
  };
}
