import { X509Certificate } from 'node:crypto';
import { certificateVersion } from './der';
import { Errors } from './errors';
import type { X509CertificateInfo } from './types';
import { utcNow } from './time';

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

export interface ParsedCertificate {
  der: Buffer;
  x509: X509Certificate;
  pem: string;
}

/**
 * Accepts every form clients send (docs/service-rest.md §4): PEM, one-line PEM (C#), base64 DER (Azure CLI)
 * and base64 of the PEM text (C service client). Returns each certificate found, leaf first as given.
 */
export function parseCertificates(input: string): ParsedCertificate[] {
  if (typeof input !== 'string' || input.trim() === '') throw Errors.invalidCertificate('The certificate is empty.');
  let text = input.trim();
  if (!text.includes('-----BEGIN')) {
    const compact = text.replace(/\s+/g, '');
    if (!BASE64.test(compact)) throw Errors.invalidCertificate('The certificate is neither PEM nor base64.');
    const decoded = Buffer.from(compact, 'base64');
    const asText = decoded.toString('latin1');
    if (asText.includes('-----BEGIN CERTIFICATE-----')) text = asText;
    else return [fromDer(decoded)];
  }
  const blocks = [...text.matchAll(PEM_BLOCK)].map((match) => match[1] ?? '');
  if (blocks.length === 0) throw Errors.invalidCertificate('No PEM certificate block was found.');
  return blocks.map((body) => {
    const compact = body.replace(/\s+/g, '');
    if (!BASE64.test(compact)) throw Errors.invalidCertificate('The PEM block is not base64.');
    return fromDer(Buffer.from(compact, 'base64'));
  });
}

export function parseCertificate(input: string): ParsedCertificate {
  const [first] = parseCertificates(input);
  return first as ParsedCertificate;
}

function fromDer(der: Buffer): ParsedCertificate {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(der);
  } catch {
    throw Errors.invalidCertificate('The certificate could not be decoded.');
  }
  return { der: x509.raw, x509, pem: x509.toString() };
}

/** Node writes a DN one RDN per line, most significant first; .NET (and so DPS) writes `CN=…, O=…`. */
export function formatDistinguishedName(nodeDn: string): string {
  return nodeDn.split('\n').filter(Boolean).reverse().join(', ');
}

/** The subject CN of a certificate, or undefined. */
export function commonName(x509: X509Certificate): string | undefined {
  const line = x509.subject.split('\n').find((part) => part.startsWith('CN='));
  return line?.slice(3);
}

export function thumbprint(x509: X509Certificate, algorithm: 'sha1' | 'sha256'): string {
  const fingerprint = algorithm === 'sha1' ? x509.fingerprint : x509.fingerprint256;
  return fingerprint.replace(/:/g, '').toUpperCase();
}

export function certificateInfo(parsed: ParsedCertificate): X509CertificateInfo {
  const { x509, der } = parsed;
  // OpenSSL decodes some malformed times that Date cannot read: a coded refusal, not a RangeError.
  const notBefore = new Date(x509.validFrom);
  const notAfter = new Date(x509.validTo);
  if (Number.isNaN(notBefore.getTime()) || Number.isNaN(notAfter.getTime())) {
    throw Errors.invalidCertificate('The certificate has an unreadable validity period.');
  }
  return {
    subjectName: formatDistinguishedName(x509.subject),
    sha1Thumbprint: thumbprint(x509, 'sha1'),
    sha256Thumbprint: thumbprint(x509, 'sha256'),
    issuerName: formatDistinguishedName(x509.issuer),
    notBeforeUtc: utcNow(notBefore),
    notAfterUtc: utcNow(notAfter),
    serialNumber: x509.serialNumber.toUpperCase(),
    version: certificateVersion(der),
  };
}
