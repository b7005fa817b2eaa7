import { randomBytes, type X509Certificate } from 'node:crypto';
import { certificateInfo, commonName, Errors, parseCertificates, type X509CertificateInfo } from '@opendps/model';

/**
 * CA certificates registered on an instance for `caReferences`, and their proof of possession: the
 * service hands out a verification code, the owner of the CA key answers with a certificate whose CN
 * is that code, signed by the CA. Until then groups referencing the CA match no device.
 */

/** 24 random bytes as 48 upper-case hex characters, short enough for a CN (at most 64 characters). */
export function createVerificationCode(): string {
  return randomBytes(24).toString('hex').toUpperCase();
}

export interface ValidatedCaCertificate {
  x509: X509Certificate;
  /** Normalised PEM, whatever form was sent. */
  pem: string;
  info: X509CertificateInfo;
}

/**
 * Checks a CA certificate an operator registers: exactly one certificate, in any accepted form
 * (docs/service-rest.md §4), a CA by its basic constraints, and valid now. Throws 400005 otherwise.
 */
export function validateCaCertificate(certificate: string, now: Date = new Date()): ValidatedCaCertificate {
  const parsed = parseCertificates(certificate);
  const [first] = parsed;
  if (!first || parsed.length !== 1) {
    throw Errors.invalidCertificate(`Exactly one CA certificate is expected, ${parsed.length} were given.`);
  }
  if (!first.x509.ca) {
    throw Errors.invalidCertificate('The certificate is not a CA certificate (basic constraints CA:TRUE is required).');
  }
  checkPeriod(first.x509, now, 'CA certificate');
  return { x509: first.x509, pem: first.pem, info: certificateInfo(first) };
}

/**
 * Verifies a proof-of-possession answer for `ca`: signed by the CA, within its validity period, its CN
 * equal to `verificationCode` (case-insensitive). Throws 400005 with the reason otherwise.
 */
export function verifyProofOfPossession(
  ca: X509Certificate,
  proof: X509Certificate,
  verificationCode: string | undefined,
  now: Date = new Date(),
): void {
  if (!verificationCode) {
    throw Errors.invalidCertificate('No verification code is pending for this CA certificate; generate one first.');
  }
  checkPeriod(ca, now, 'CA certificate');
  if (!proof.checkIssued(ca) || !verifies(proof, ca)) {
    throw Errors.invalidCertificate('The verification certificate is not signed by the CA certificate.');
  }
  checkPeriod(proof, now, 'verification certificate');
  const cn = commonName(proof);
  if (cn === undefined || cn.toLowerCase() !== verificationCode.toLowerCase()) {
    throw Errors.invalidCertificate(
      `The verification certificate's common name '${cn ?? ''}' is not the verification code.`,
    );
  }
}

function verifies(subject: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return subject.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

function checkPeriod(x509: X509Certificate, now: Date, role: string): void {
  const notBefore = Date.parse(x509.validFrom);
  const notAfter = Date.parse(x509.validTo);
  if (!(now.getTime() >= notBefore)) throw Errors.invalidCertificate(`The ${role} is not valid yet.`);
  if (!(now.getTime() <= notAfter)) throw Errors.invalidCertificate(`The ${role} has expired.`);
}
