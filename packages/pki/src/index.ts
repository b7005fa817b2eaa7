import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';

/**
 * Certificate generation for the development CA, server certificates and test fleets. Keys come from
 * node:crypto (fast, native); node-forge only assembles and signs certificates. Verification never
 * uses this package (ARCHITECTURE.md: node:crypto on hot paths).
 */
export interface Issued {
  certificatePem: string;
  privateKeyPem: string;
}

export interface CertificateOptions {
  commonName: string;
  /** Defaults: now - 1 h to now + `validityDays`. */
  notBefore?: Date;
  notAfter?: Date;
  validityDays?: number;
  organization?: string;
}

export interface LeafOptions extends CertificateOptions {
  /** DNS names and IP addresses for subjectAltName (server certificates). */
  subjectAltNames?: string[];
  /** clientAuth (devices, the default), serverAuth (listeners) or both. */
  usage?: Array<'clientAuth' | 'serverAuth'>;
}

const HOUR = 3600_000;
const DAY = 24 * HOUR;

function newKeyPair(): { privateKeyPem: string; publicKey: forge.pki.PublicKey } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { privateKeyPem: privateKey, publicKey: forge.pki.publicKeyFromPem(publicKey) };
}

function build(
  options: CertificateOptions,
  issuer: Issued | undefined,
  extensions: object[],
): Issued {
  const keys = newKeyPair();
  const certificate = forge.pki.createCertificate();
  certificate.publicKey = keys.publicKey;
  // A positive 16-byte serial: the high bit cleared so DER does not need a sign byte.
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f;
  certificate.serialNumber = serial.toString('hex');
  const now = Date.now();
  certificate.validity.notBefore = options.notBefore ?? new Date(now - HOUR);
  certificate.validity.notAfter = options.notAfter ?? new Date(now + (options.validityDays ?? 365) * DAY);
  const subject = [{ name: 'commonName', value: options.commonName }];
  if (options.organization) subject.push({ name: 'organizationName', value: options.organization });
  certificate.setSubject(subject);
  const issuerCertificate = issuer ? forge.pki.certificateFromPem(issuer.certificatePem) : undefined;
  certificate.setIssuer(issuerCertificate ? issuerCertificate.subject.attributes : subject);
  certificate.setExtensions([
    ...extensions,
    { name: 'subjectKeyIdentifier' },
    ...(issuerCertificate ? [{ name: 'authorityKeyIdentifier', keyIdentifier: issuerCertificate.generateSubjectKeyIdentifier().getBytes() }] : []),
  ]);
  const signingKey = forge.pki.privateKeyFromPem(issuer ? issuer.privateKeyPem : keys.privateKeyPem);
  certificate.sign(signingKey, forge.md.sha256.create());
  return { certificatePem: forge.pki.certificateToPem(certificate), privateKeyPem: keys.privateKeyPem };
}

/** A self-signed root CA. */
export function createRootCa(options: CertificateOptions): Issued {
  return build({ validityDays: 3650, ...options }, undefined, [
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
  ]);
}

/** An intermediate CA signed by `issuer`. */
export function createIntermediateCa(issuer: Issued, options: CertificateOptions): Issued {
  return build({ validityDays: 1825, ...options }, issuer, [
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
  ]);
}

/** An end-entity certificate signed by `issuer` (a device, a server, a proof-of-possession answer). */
export function createLeaf(issuer: Issued | undefined, options: LeafOptions): Issued {
  const usage = options.usage ?? ['clientAuth'];
  const altNames = (options.subjectAltNames ?? []).map((name) =>
    isIP(name) ? { type: 7, ip: name } : { type: 2, value: name },
  );
  return build(options, issuer, [
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: usage.includes('serverAuth'), clientAuth: usage.includes('clientAuth') },
    ...(altNames.length ? [{ name: 'subjectAltName', altNames }] : []),
  ]);
}

/** A TLS server certificate for the given host names and IP addresses. */
export function createServerCertificate(issuer: Issued, hosts: string[]): Issued {
  const unique = [...new Set(hosts)];
  return createLeaf(issuer, {
    commonName: unique[0] ?? 'localhost',
    subjectAltNames: unique,
    usage: ['serverAuth'],
    validityDays: 825,
  });
}

/** The proof-of-possession answer: a certificate whose CN is the verification code, signed by the CA. */
export function createVerificationCertificate(ca: Issued, verificationCode: string): Issued {
  return createLeaf(ca, { commonName: verificationCode, validityDays: 1 });
}
