import { createVerificationCode, validateCaCertificate, verifyProofOfPossession } from '@opendps/attestation';
import { Errors, parseCertificates, type CaCertificate } from '@opendps/model';
import { caCertificates, enrollmentGroups, etagMatches, type CaCertificateRepository, type PageOptions } from '@opendps/store';
import { header, pathId, type OperationContext, type OperationHandler } from './context';
import { assertNoVerifiedClaim, certificateOf, certificateView } from './certificates-views';
import type { CertificateOperation } from './certificates-routes';

/**
 * CA certificates of the caller's instance and their proof of possession. Every write is a
 * compare-and-set on the etag just read, so a concurrent verify, new code or replacement is never
 * overwritten with stale state (the loser gets 412).
 */

const repositoryOf = (context: OperationContext): CaCertificateRepository => caCertificates(context.store, context.instance.idScope);

/** The stored CA, 404206 when absent, and the caller's If-Match checked against it (412). */
async function current(context: OperationContext): Promise<CaCertificate & { etag: string }> {
  const name = pathId(context);
  const ca = await repositoryOf(context).get(name);
  if (!ca) throw Errors.certificateNotFound(`The CA certificate '${name}' was not found.`);
  assertIfMatch(context, ca.etag);
  return ca as CaCertificate & { etag: string };
}

function assertIfMatch(context: OperationContext, etag: string | undefined): void {
  const ifMatch = header(context, 'if-match');
  if (ifMatch === undefined) return;
  if (etag === undefined || !etagMatches(etag, ifMatch)) throw Errors.preconditionFailed();
}

/** GET /certificates → ARM's CertificateListDescription `{ value: [...] }`, every page. */
const listCertificates: OperationHandler = async (context) => {
  const repository = repositoryOf(context);
  const value = [];
  let options: PageOptions = {};
  for (;;) {
    const page = await repository.list(options);
    value.push(...page.items.map(certificateView));
    if (!page.continuation) break;
    options = { continuation: page.continuation };
  }
  return { status: 200, body: { value } };
};

const getCertificate: OperationHandler = async (context) => ({ status: 200, body: certificateView(await current(context)) });

/**
 * Create or replace. Uploading the very certificate already stored keeps its verification; any other
 * certificate starts unverified with no pending code (the old proof says nothing about the new key).
 */
const putCertificate: OperationHandler = async (context) => {
  const name = pathId(context);
  assertNoVerifiedClaim(context.body);
  const repository = repositoryOf(context);
  const existing = await repository.get(name);
  if (header(context, 'if-match') !== undefined && !existing) throw Errors.preconditionFailed();
  if (header(context, 'if-none-match')?.trim() === '*' && existing) throw Errors.conflict(`The CA certificate '${name}' already exists.`);
  assertIfMatch(context, existing?.etag);
  const validated = validateCaCertificate(certificateOf(context.body));
  const same = existing !== undefined && existing.info.sha256Thumbprint === validated.info.sha256Thumbprint;
  const ca: CaCertificate = {
    name,
    certificate: validated.pem,
    info: validated.info,
    isVerified: same && existing.isVerified,
    ...(same && existing.verificationCode ? { verificationCode: existing.verificationCode } : {}),
    ...(existing?.createdDateTimeUtc ? { createdDateTimeUtc: existing.createdDateTimeUtc } : {}),
  };
  const stored = await repository.put(ca, existing?.etag ? { ifMatch: existing.etag } : { ifNoneMatch: '*' });
  return { status: 200, body: certificateView(stored) };
};

/**
 * Refused with 409002 while enrollment groups name the CA in caReferences: they would stop matching
 * devices. The check here names the groups; the store's delete repeats it atomically, so a group
 * written between the two still refuses the delete.
 */
const deleteCertificate: OperationHandler = async (context) => {
  const ca = await current(context);
  const groups = await enrollmentGroups(context.store, context.instance.idScope).findByCaReference(ca.name);
  if (groups.length > 0) {
    const ids = groups.map((group) => group.enrollmentGroupId).sort();
    throw Errors.caCertificateInUse(
      `The CA certificate '${ca.name}' is referenced by enrollment group(s) ${ids.map((id) => `'${id}'`).join(', ')}; change or delete them first.`,
      { enrollmentGroups: ids.join(',') },
    );
  }
  if (!(await repositoryOf(context).delete(ca.name, { ifMatch: ca.etag }))) {
    throw Errors.certificateNotFound(`The CA certificate '${ca.name}' was not found.`);
  }
  return { status: 204 };
};

/** A fresh code replaces any pending one; an already verified CA stays verified. */
const generateVerificationCode: OperationHandler = async (context) => {
  const { etag, ...ca } = await current(context);
  const stored = await repositoryOf(context).put({ ...ca, verificationCode: createVerificationCode() }, { ifMatch: etag });
  return { status: 200, body: certificateView(stored) };
};

/** The proof's CN must be the pending code and the CA must have signed it; the code is then used up. */
const verifyCertificate: OperationHandler = async (context) => {
  const { etag, verificationCode, ...ca } = await current(context);
  const proofText = certificateOf(context.body);
  if (!verificationCode) {
    throw Errors.noVerificationCode(`No verification code is pending for '${ca.name}'; POST generateVerificationCode first.`);
  }
  const [proof] = parseCertificates(proofText);
  const [caCertificate] = parseCertificates(ca.certificate);
  if (!proof || !caCertificate) throw Errors.invalidCertificate();
  verifyProofOfPossession(caCertificate.x509, proof.x509, verificationCode);
  const stored = await repositoryOf(context).put({ ...ca, isVerified: true }, { ifMatch: etag });
  return { status: 200, body: certificateView(stored) };
};

export const certificateHandlers: Record<CertificateOperation, OperationHandler> = {
  listCertificates,
  getCertificate,
  putCertificate,
  deleteCertificate,
  generateVerificationCode,
  verifyCertificate,
};
