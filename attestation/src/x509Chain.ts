import { X509Certificate } from 'node:crypto';
import { commonName, Errors } from '@opendps/model';
import { basicConstraints } from './x509Extensions';

/**
 * X.509 chains as devices present them in TLS: leaf first, then intermediates, sometimes the root.
 * The TLS socket does not verify them (the server cannot know the trust anchor before it has found
 * the enrollment), so every check happens here, with node:crypto only (docs/architecture.md, principles).
 */
export interface ChainOptions {
  /** The instant validity periods are checked against (default: now). */
  now?: Date;
}

/** Longer chains are refused before any signature is checked (no device needs more). */
export const MAX_CHAIN_LENGTH = 10;

/** Decodes the DER certificates of a TLS handshake (leaf first); bad input is a 401002. */
export function parseClientChain(chain: readonly Buffer[]): X509Certificate[] {
  if (chain.length === 0) throw Errors.invalidClientCertificate('No client certificate was presented.');
  if (chain.length > MAX_CHAIN_LENGTH) {
    throw Errors.invalidClientCertificate(`The certificate chain is longer than ${MAX_CHAIN_LENGTH} certificates.`);
  }
  return chain.map((der, index) => {
    try {
      return new X509Certificate(der);
    } catch {
      throw Errors.invalidClientCertificate(`Certificate ${index} of the chain could not be decoded.`);
    }
  });
}

/** `CN=…` or the whole subject, to name a certificate in an error message. */
export function describeCertificate(x509: X509Certificate): string {
  const cn = commonName(x509);
  return cn !== undefined ? `'${cn}'` : `'${x509.subject.replace(/\n/g, ', ')}'`;
}

/** Throws 401002 unless `now` lies within the certificate's validity period. */
export function checkValidity(x509: X509Certificate, now: Date, role: string): void {
  const notBefore = Date.parse(x509.validFrom);
  const notAfter = Date.parse(x509.validTo);
  if (Number.isNaN(notBefore) || Number.isNaN(notAfter)) {
    throw Errors.invalidClientCertificate(`The ${role} certificate ${describeCertificate(x509)} has an unreadable validity period.`);
  }
  if (now.getTime() < notBefore) {
    throw Errors.invalidClientCertificate(
      `The ${role} certificate ${describeCertificate(x509)} is not valid yet (not before ${new Date(notBefore).toISOString()}).`,
    );
  }
  if (now.getTime() > notAfter) {
    throw Errors.invalidClientCertificate(
      `The ${role} certificate ${describeCertificate(x509)} has expired (not after ${new Date(notAfter).toISOString()}).`,
    );
  }
}

/** Subject equals issuer (RFC 5280 "self-issued"); such certificates do not count against path lengths. */
export function isSelfIssued(x509: X509Certificate): boolean {
  return x509.subject === x509.issuer;
}

/** A self-issued certificate whose signature verifies with its own key: a root. */
export function isSelfSigned(x509: X509Certificate): boolean {
  return isSelfIssued(x509) && signedBy(x509, x509);
}

function signedBy(subject: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return subject.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/**
 * Checks that `issuer` may have issued `chain[index]`, the certificate at `index` of a leaf-first
 * chain: a CA, named as its issuer (and its key identifier, OpenSSL's X509_check_issued), its
 * signature verified, within its pathLenConstraint. `chain` may not contain `issuer` (an absent root
 * found through an enrollment). Throws 401002 with the reason.
 */
export function checkIssuer(chain: readonly X509Certificate[], index: number, issuer: X509Certificate): void {
  const subject = chain[index];
  if (!subject) throw Errors.invalidClientCertificate('The certificate chain is empty.');
  const name = describeCertificate(issuer);
  if (!issuer.ca) {
    throw Errors.invalidClientCertificate(`The issuer certificate ${name} is not a CA (basic constraints).`);
  }
  if (!subject.checkIssued(issuer)) {
    throw Errors.invalidClientCertificate(
      `The certificate ${describeCertificate(subject)} was not issued by ${name} (issuer name or key identifier differs).`,
    );
  }
  if (!signedBy(subject, issuer)) {
    throw Errors.invalidClientCertificate(
      `The signature of the certificate ${describeCertificate(subject)} does not verify with the key of ${name}.`,
    );
  }
  const pathLength = pathLengthOf(issuer);
  if (pathLength !== undefined) {
    // CA certificates between this issuer and the leaf; self-issued ones do not count (RFC 5280 §4.2.1.9).
    const below = chain.slice(1, index + 1).filter((certificate) => !isSelfIssued(certificate)).length;
    if (below > pathLength) {
      throw Errors.invalidClientCertificate(
        `The CA certificate ${name} allows ${pathLength} intermediate CA certificate(s) below it, the chain has ${below}.`,
      );
    }
  }
}

function pathLengthOf(issuer: X509Certificate): number | undefined {
  try {
    return basicConstraints(issuer)?.pathLength;
  } catch {
    throw Errors.invalidClientCertificate(`The basic constraints of ${describeCertificate(issuer)} could not be read.`);
  }
}

/**
 * Verifies a leaf-first chain: every certificate within its validity period, each one issued and
 * signed by the next (which must be a CA honouring its path length), the leaf not a CA. It does not
 * decide trust: the chain's anchor is whatever enrollment matches (x509Enrollment.ts).
 * Throws `Errors.invalidClientCertificate` (401002) with the specific reason.
 */
export function verifyCertificateChain(chain: readonly X509Certificate[], options: ChainOptions = {}): void {
  const now = options.now ?? new Date();
  const [leaf] = chain;
  if (!leaf) throw Errors.invalidClientCertificate('No client certificate was presented.');
  if (chain.length > MAX_CHAIN_LENGTH) {
    throw Errors.invalidClientCertificate(`The certificate chain is longer than ${MAX_CHAIN_LENGTH} certificates.`);
  }
  chain.forEach((certificate, index) => checkValidity(certificate, now, index === 0 ? 'client' : 'issuer'));
  if (leaf.ca) throw Errors.invalidClientCertificate(`The client certificate ${describeCertificate(leaf)} is a CA certificate.`);
  for (let index = 0; index + 1 < chain.length; index++) {
    checkIssuer(chain, index, chain[index + 1] as X509Certificate);
  }
}
