import {
  Errors,
  utcNow,
  type EnrollmentGroup,
  type EnrollmentRules,
  type IndividualEnrollment,
  type X509CertificateWithInfo,
  type X509Certificates,
} from '@opendps/model';
import { caCertificates, etagMatches, type Store, type WriteOptions } from '@opendps/store';
import type { EnrollmentKind } from './enrollment-kinds';

type Enrollment = IndividualEnrollment | EnrollmentGroup;

/**
 * One enrollment write, shared by PUT and bulk: conditions first, then validation, then what a
 * read-modify-write round trip leaves out (keys, certificates) taken from the stored version.
 */
export async function writeEnrollment<T extends Enrollment>(
  kind: EnrollmentKind<T>,
  store: Store,
  idScope: string,
  body: unknown,
  id: string,
  conditions: WriteOptions,
  rules: EnrollmentRules = {},
): Promise<T> {
  const repository = kind.repository(store, idScope);
  const existing = await repository.get(id);
  checkConditions(existing, conditions);
  const enrollment = kind.validate(keepStoredKeys(body, existing), id, rules);
  keepStoredCertificates(kind, enrollment, existing);
  await assertCaReferencesExist(store, idScope, enrollment);
  enrollment.createdDateTimeUtc = existing?.createdDateTimeUtc ?? utcNow();
  return repository.put(enrollment, conditions);
}

/** The store checks again atomically; checking here lets 412/409 win over validation errors. */
function checkConditions(existing: Enrollment | undefined, conditions: WriteOptions): void {
  if (conditions.ifNoneMatch === '*' && existing) throw Errors.conflict('The enrollment already exists.');
  const ifMatch = conditions.ifMatch;
  if (ifMatch === undefined) return;
  if (!existing?.etag || !etagMatches(existing.etag, ifMatch)) throw Errors.preconditionFailed();
}

/** Reads omit symmetric keys, so a PUT of what was read must keep the stored keys, not generate new ones. */
function keepStoredKeys(body: unknown, existing: Enrollment | undefined): unknown {
  const storedKeys = existing?.attestation.symmetricKey;
  if (!storedKeys || !isObject(body) || !isObject(body.attestation)) return body;
  const attestation = body.attestation;
  if (attestation.type !== 'symmetricKey') return body;
  const given = isObject(attestation.symmetricKey) ? attestation.symmetricKey : {};
  const missing = (key: unknown) => key === undefined || key === null || key === '';
  return {
    ...body,
    attestation: {
      ...attestation,
      symmetricKey: {
        ...given,
        primaryKey: missing(given.primaryKey) ? storedKeys.primaryKey : given.primaryKey,
        secondaryKey: missing(given.secondaryKey) ? storedKeys.secondaryKey : given.secondaryKey,
      },
    },
  };
}

/**
 * Reads return certificates as `info` only; a PUT that sends back only `info` keeps the stored
 * certificate with the same thumbprint. Otherwise the certificate itself is required.
 */
function keepStoredCertificates<T extends Enrollment>(kind: EnrollmentKind<T>, enrollment: T, existing: T | undefined): void {
  const certificates: X509Certificates | undefined = enrollment.attestation.x509?.[kind.certificateField];
  if (!certificates) return;
  const stored = existing?.attestation.x509?.[kind.certificateField];
  for (const slot of ['primary', 'secondary'] as const) {
    const entry = certificates[slot];
    if (!entry || entry.certificate) continue;
    const match = findStored(stored, entry);
    if (!match) {
      throw Errors.invalidCertificate(
        `attestation.x509.${kind.certificateField}.${slot} has only 'info' that matches no stored certificate; send the certificate.`,
      );
    }
    certificates[slot] = match;
  }
}

function findStored(stored: X509Certificates | undefined, entry: X509CertificateWithInfo): X509CertificateWithInfo | undefined {
  const wanted = entry.info?.sha256Thumbprint?.toUpperCase();
  return [stored?.primary, stored?.secondary].find(
    (candidate) => candidate?.certificate && candidate.info?.sha256Thumbprint.toUpperCase() === wanted,
  );
}

/**
 * `caReferences` must name CA certificates registered on the instance; whether verified is checked
 * at registration. This early check gives the message; the store repeats it in the write's own
 * atomic step, so a CA deleted meanwhile still refuses the write.
 */
async function assertCaReferencesExist(store: Store, idScope: string, enrollment: Enrollment): Promise<void> {
  const references = enrollment.attestation.x509?.caReferences;
  if (!references) return;
  const repository = caCertificates(store, idScope);
  for (const name of [references.primary, references.secondary]) {
    if (name !== undefined && !(await repository.get(name))) {
      throw Errors.invalidAttestation(`caReferences names '${name}', which is not a CA certificate of this instance.`);
    }
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
