import type { X509Certificate } from 'node:crypto';
import {
  certificateInfo,
  commonName,
  Errors,
  formatDistinguishedName,
  parseCertificate,
  thumbprint,
  type CaCertificate,
  type DeviceRegistrationState,
  type EnrollmentGroup,
  type IndividualEnrollment,
  type X509Certificates,
  type X509CertificateWithInfo,
} from '@opendps/model';
import { checkIssuer, checkValidity, describeCertificate, isSelfSigned, verifyCertificateChain } from './x509Chain';

/**
 * The indexed lookups X.509 matching needs; the registration service implements them over the store
 * repositories. Every method is one index read (never a scan), so the cost of a registration does not
 * grow with the number of enrollments. Thumbprints are upper-case hex; names and subjects compare
 * case-insensitively. Results may hold false positives (a stale index): the matcher re-checks each
 * document.
 */
export interface X509EnrollmentSource {
  /** Individual enrollments with a client certificate (primary or secondary) of this sha256 thumbprint. */
  enrollmentsByClientThumbprint(sha256Thumbprint: string): Promise<IndividualEnrollment[]>;
  /** Groups with a signing certificate (primary or secondary) of this sha256 thumbprint. */
  groupsBySigningThumbprint(sha256Thumbprint: string): Promise<EnrollmentGroup[]>;
  /**
   * Groups with a signing certificate whose subject (`info.subjectName`, `CN=…, O=…`) is this one:
   * finds the root a device did not send. The documents must keep the signing certificate's PEM.
   */
  groupsBySigningSubject(subjectName: string): Promise<EnrollmentGroup[]>;
  /** Groups whose caReferences (primary or secondary) name this CA certificate. */
  groupsByCaReference(caName: string): Promise<EnrollmentGroup[]>;
  /** CA certificates registered on the instance with this sha256 thumbprint. */
  caCertificatesByThumbprint(sha256Thumbprint: string): Promise<CaCertificate[]>;
  /** CA certificates whose subject (`info.subjectName`) is this one: the root a device did not send. */
  caCertificatesBySubject(subjectName: string): Promise<CaCertificate[]>;
}

export interface X509MatchOptions {
  /** The registration id the device asked for; the leaf's CN must equal it (case-insensitive). */
  registrationId: string;
  /** The instant validity periods are checked against (default: now). */
  now?: Date;
}

/** `registrationState.x509` as the registration record and the device answer carry it (docs/service-rest.md §14). */
export type X509RegistrationInfo = NonNullable<DeviceRegistrationState['x509']>;

export type X509EnrollmentMatch =
  | {
      kind: 'individual';
      enrollment: IndividualEnrollment;
      /** The enrollment's deviceId if set, else the registration id (docs/service-rest.md §14). */
      deviceId: string;
      x509: X509RegistrationInfo;
    }
  | {
      kind: 'group';
      group: EnrollmentGroup;
      /** The certificate that anchors the chain: the group's signing certificate or its verified CA. */
      signer: X509Certificate;
      /** Set when the group matched through `caReferences`. */
      caName?: string;
      /** The leaf's CN. */
      deviceId: string;
      x509: X509RegistrationInfo;
    };

interface GroupCandidate {
  group: EnrollmentGroup;
  signer: X509Certificate;
  caName?: string;
}

/**
 * Finds the enrollment a verified X.509 chain registers through (docs/service-rest.md §14): an individual
 * enrollment for the leaf first, then a group for the first issuer, the next, … up to the root, which
 * the device may leave out (then the group's signing certificate or verified CA must have signed the
 * last certificate sent). The first level with a match decides: if a match there is disabled, the
 * device is refused even when a group further up is enabled. Groups through `caReferences` count only
 * once their CA is verified (proof of possession).
 *
 * Throws 401002 (`invalidClientCertificate`) for a bad chain, a CN that is not the registration id, an
 * unverified or unknown CA; 401007 (`enrollmentDisabled`, info names the enrollment) when disabled.
 */
export async function matchX509Enrollment(
  chain: readonly X509Certificate[],
  source: X509EnrollmentSource,
  options: X509MatchOptions,
): Promise<X509EnrollmentMatch> {
  const now = options.now ?? new Date();
  verifyCertificateChain(chain, { now });
  const leaf = chain[0] as X509Certificate;
  const deviceId = checkCommonName(leaf, options.registrationId);
  const leafInfo = infoOf(leaf);

  const enrollment = await findIndividualEnrollment(leaf, source, options.registrationId);
  if (enrollment) {
    if (enrollment.provisioningStatus === 'disabled') {
      throw Errors.enrollmentDisabled(`The enrollment '${enrollment.registrationId}' is disabled.`, {
        registrationId: enrollment.registrationId,
      });
    }
    return {
      kind: 'individual',
      enrollment,
      deviceId: enrollment.deviceId || options.registrationId,
      x509: { certificateInfo: leafInfo },
    };
  }

  // Why a candidate did not count (unverified CA, expired stored root); the first one explains a refusal.
  const reasons: string[] = [];
  const last = chain[chain.length - 1] as X509Certificate;
  for (let index = 1; index <= chain.length; index++) {
    const candidates =
      index < chain.length
        ? await groupsForPresentedIssuer(chain[index] as X509Certificate, source, reasons)
        : isSelfSigned(last)
          ? []
          : await groupsForAbsentIssuer(chain, source, now, reasons);
    const winner = firstMatch(candidates);
    if (winner) {
      return {
        kind: 'group',
        group: winner.group,
        signer: winner.signer,
        ...(winner.caName !== undefined ? { caName: winner.caName } : {}),
        deviceId,
        x509: {
          certificateInfo: leafInfo,
          enrollmentGroupId: winner.group.enrollmentGroupId,
          signingCertificateInfo: infoOf(winner.signer),
        },
      };
    }
  }
  if (reasons.length > 0) throw Errors.invalidClientCertificate(reasons[0]);
  throw Errors.invalidClientCertificate(
    'No enrollment matches the client certificate and no enrollment group matches any of its issuers (unknown CA).',
  );
}

/** X.509 devices register with the leaf's CN as registration id (docs/service-rest.md §14); returns the CN. */
function checkCommonName(leaf: X509Certificate, registrationId: string): string {
  const cn = commonName(leaf);
  if (cn === undefined || cn === '') {
    throw Errors.invalidClientCertificate('The client certificate has no subject common name (CN) to register with.');
  }
  if (cn.toLowerCase() !== registrationId.toLowerCase()) {
    throw Errors.invalidClientCertificate(
      `The client certificate's common name '${cn}' does not match the registration id '${registrationId}'.`,
    );
  }
  return cn;
}

async function findIndividualEnrollment(
  leaf: X509Certificate,
  source: X509EnrollmentSource,
  registrationId: string,
): Promise<IndividualEnrollment | undefined> {
  const sha256 = thumbprint(leaf, 'sha256');
  const found = (await source.enrollmentsByClientThumbprint(sha256)).filter((enrollment) =>
    holdsCertificate(enrollment.attestation.x509?.clientCertificates, leaf),
  );
  if (found.length === 0) return undefined;
  const own = found.find((enrollment) => enrollment.registrationId.toLowerCase() === registrationId.toLowerCase());
  if (!own) {
    throw Errors.invalidClientCertificate(
      `The client certificate is enrolled for registration id '${found[0]?.registrationId}', not '${registrationId}'.`,
    );
  }
  return own;
}

/** Groups whose signing certificate or verified CA is `issuer`, a certificate the device sent. */
async function groupsForPresentedIssuer(
  issuer: X509Certificate,
  source: X509EnrollmentSource,
  reasons: string[],
): Promise<GroupCandidate[]> {
  const sha256 = thumbprint(issuer, 'sha256');
  const [signingGroups, cas] = await Promise.all([
    source.groupsBySigningThumbprint(sha256),
    source.caCertificatesByThumbprint(sha256),
  ]);
  const candidates: GroupCandidate[] = signingGroups
    .filter((group) => holdsCertificate(group.attestation.x509?.signingCertificates, issuer))
    .map((group) => ({ group, signer: issuer }));
  for (const ca of cas.filter((ca) => sameThumbprint(ca.info.sha256Thumbprint, sha256))) {
    candidates.push(...(await groupsReferencing(ca, issuer, source, reasons)));
  }
  return candidates;
}

/**
 * Groups anchored by the issuer of the last certificate sent (a root left out of the chain), found by
 * subject name and accepted only if that stored certificate verifiably issued it.
 */
async function groupsForAbsentIssuer(
  chain: readonly X509Certificate[],
  source: X509EnrollmentSource,
  now: Date,
  reasons: string[],
): Promise<GroupCandidate[]> {
  const lastIndex = chain.length - 1;
  const last = chain[lastIndex] as X509Certificate;
  const issuerName = formatDistinguishedName(last.issuer);
  const [signingGroups, cas] = await Promise.all([
    source.groupsBySigningSubject(issuerName),
    source.caCertificatesBySubject(issuerName),
  ]);
  // A stored certificate named as the issuer must also be valid, a CA, and have signed the chain. A
  // failing one is skipped, not fatal: a renewed root may share its name and key with an expired one.
  const anchor = (stored: string | undefined): X509Certificate | undefined => {
    const certificate = decode(stored);
    if (!certificate || !last.checkIssued(certificate)) return undefined;
    try {
      checkValidity(certificate, now, 'issuer');
      checkIssuer(chain, lastIndex, certificate);
      return certificate;
    } catch (error) {
      reasons.push((error as Error).message);
      return undefined;
    }
  };
  const candidates: GroupCandidate[] = [];
  for (const group of signingGroups) {
    const slots = group.attestation.x509?.signingCertificates;
    const signer = anchor(slots?.primary?.certificate) ?? anchor(slots?.secondary?.certificate);
    if (signer) candidates.push({ group, signer });
  }
  for (const ca of cas) {
    const signer = anchor(ca.certificate);
    if (signer) candidates.push(...(await groupsReferencing(ca, signer, source, reasons)));
  }
  return candidates;
}

/** Groups whose caReferences name `ca`; none if the CA is not verified (noted for the final error). */
async function groupsReferencing(
  ca: CaCertificate,
  signer: X509Certificate,
  source: X509EnrollmentSource,
  reasons: string[],
): Promise<GroupCandidate[]> {
  const name = ca.name.toLowerCase();
  const groups = (await source.groupsByCaReference(ca.name)).filter((group) => {
    const references = group.attestation.x509?.caReferences;
    return references?.primary?.toLowerCase() === name || references?.secondary?.toLowerCase() === name;
  });
  if (groups.length === 0) return [];
  if (!ca.isVerified) {
    reasons.push(
      `The CA certificate '${ca.name}' (${describeCertificate(signer)}) used by enrollment group ` +
        `'${groups[0]?.enrollmentGroupId}' is not verified (proof of possession is pending).`,
    );
    return [];
  }
  return groups.map((group) => ({ group, signer, caName: ca.name }));
}

/**
 * The winner among the groups matched at one level: signing certificates before CA references, then
 * by group id, so the choice is stable. Should one of them be disabled, the device is refused: a
 * disabled group is an operator's block, and an enabled twin at the same level must not bypass it.
 */
function firstMatch(candidates: GroupCandidate[]): GroupCandidate | undefined {
  if (candidates.length === 0) return undefined;
  const disabled = candidates.find((candidate) => candidate.group.provisioningStatus === 'disabled');
  if (disabled) {
    const id = disabled.group.enrollmentGroupId;
    throw Errors.enrollmentDisabled(`The enrollment group '${id}' is disabled.`, { enrollmentGroupId: id });
  }
  const rank = (candidate: GroupCandidate): number => (candidate.caName === undefined ? 0 : 1);
  return [...candidates].sort(
    (a, b) => rank(a) - rank(b) || a.group.enrollmentGroupId.localeCompare(b.group.enrollmentGroupId),
  )[0];
}

function holdsCertificate(slots: X509Certificates | undefined, x509: X509Certificate): boolean {
  const sha256 = thumbprint(x509, 'sha256');
  const sha1 = thumbprint(x509, 'sha1');
  return [slots?.primary, slots?.secondary].some(
    (slot: X509CertificateWithInfo | undefined) =>
      sameThumbprint(slot?.info?.sha256Thumbprint, sha256) || sameThumbprint(slot?.info?.sha1Thumbprint, sha1),
  );
}

function sameThumbprint(stored: string | undefined, actual: string): boolean {
  return stored !== undefined && stored.replace(/:/g, '').toUpperCase() === actual;
}

/** A stored certificate in any form the service API accepts (docs/service-rest.md §4). */
function decode(stored: string | undefined): X509Certificate | undefined {
  if (!stored) return undefined;
  try {
    return parseCertificate(stored).x509;
  } catch {
    return undefined;
  }
}

function infoOf(x509: X509Certificate) {
  return certificateInfo({ der: x509.raw, x509, pem: x509.toString() });
}
