import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';

/**
 * Certificate generation for the development CA, server certificates and test fleets. Keys come from
 * node:crypto (fast, native); node-forge only assembles and signs certificates. Verification never
 * uses this package (docs/architecture.md: node:crypto on hot paths).
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

/** RSA-2048, or ECDSA P-256: the cheaper TLS handshake for the server (leaf certificates only). */
export type KeyType = 'rsa' | 'ec';

export interface LeafOptions extends CertificateOptions {
  /** Default `rsa`. An `ec` leaf needs an issuer (which signs it with its RSA key). */
  keyType?: KeyType;
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
  options: CertificateOptions & { keyType?: KeyType },
  issuer: Issued | undefined,
  extensions: object[],
): Issued {
  if (options.keyType === 'ec') return buildEc(options, issuer, extensions);
  const keys = newKeyPair();
  const certificate = prepare(options, issuer, keys.publicKey, extensions, [{ name: 'subjectKeyIdentifier' }]);
  const signingKey = forge.pki.privateKeyFromPem(issuer ? issuer.privateKeyPem : keys.privateKeyPem);
  certificate.sign(signingKey, forge.md.sha256.create());
  return { certificatePem: forge.pki.certificateToPem(certificate), privateKeyPem: keys.privateKeyPem };
}

/** A forge certificate with everything but the signature. */
function prepare(
  options: CertificateOptions,
  issuer: Issued | undefined,
  publicKey: forge.pki.PublicKey,
  extensions: object[],
  subjectKeyIdentifier: object[],
): forge.pki.Certificate {
  const certificate = forge.pki.createCertificate();
  certificate.publicKey = publicKey;
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
    ...subjectKeyIdentifier,
    ...(issuerCertificate ? [{ name: 'authorityKeyIdentifier', keyIdentifier: issuerCertificate.generateSubjectKeyIdentifier().getBytes() }] : []),
  ]);
  return certificate;
}

/**
 * A P-256 leaf signed by an RSA issuer. node-forge can neither hold an EC public key nor sign with
 * one, so forge assembles the TBSCertificate around a stand-in key, the real SubjectPublicKeyInfo
 * (DER from node:crypto) replaces it, and node:crypto signs the result with the issuer's key.
 */
function buildEc(options: CertificateOptions, issuer: Issued | undefined, extensions: object[]): Issued {
  if (!issuer) throw new Error('an EC certificate needs an issuer');
  const issuerKey = createPrivateKey(issuer.privateKeyPem);
  if (issuerKey.asymmetricKeyType !== 'rsa') throw new Error('an EC certificate needs an RSA issuer');
  const { privateKey, publicKey } = generateKeyPairSync('ec', {
    namedCurve: 'prime256v1',
    publicKeyEncoding: { type: 'spki', format: 'der' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const spki = forge.asn1.fromDer(forge.util.createBuffer(publicKey.toString('binary')));
  // RFC 5280 §4.2.1.2 (1): the SHA-1 of the subjectPublicKey BIT STRING, without its unused-bits byte.
  const bitString = (spki.value as forge.asn1.Asn1[])[1]?.value as string;
  const keyIdentifier = createHash('sha1').update(Buffer.from(bitString.slice(1), 'binary')).digest();
  const subjectKeyIdentifier = {
    name: 'subjectKeyIdentifier',
    value: forge.asn1.create(forge.asn1.Class.UNIVERSAL, forge.asn1.Type.OCTETSTRING, false, keyIdentifier.toString('binary')),
  };
  const standIn = forge.pki.certificateFromPem(issuer.certificatePem).publicKey;
  const certificate = prepare(options, issuer, standIn, extensions, [subjectKeyIdentifier]);
  const algorithm = forge.pki.oids.sha256WithRSAEncryption as string;
  certificate.siginfo.algorithmOid = algorithm;
  // Public in node-forge, missing from its type declarations.
  const tbs = (forge.pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 }).getTBSCertificate(certificate);
  // TBSCertificate: version, serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, ...
  (tbs.value as forge.asn1.Asn1[])[6] = spki;
  const tbsDer = forge.asn1.toDer(tbs).getBytes();
  const signature = sign('sha256', Buffer.from(tbsDer, 'binary'), issuerKey);
  const { Class, Type } = forge.asn1;
  const der = forge.asn1.toDer(
    forge.asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, [
      tbs,
      forge.asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, [
        forge.asn1.create(Class.UNIVERSAL, Type.OID, false, forge.asn1.oidToDer(algorithm).getBytes()),
        forge.asn1.create(Class.UNIVERSAL, Type.NULL, false, ''),
      ]),
      forge.asn1.create(Class.UNIVERSAL, Type.BITSTRING, false, `\0${signature.toString('binary')}`),
    ]),
  ).getBytes();
  return { certificatePem: forge.pem.encode({ type: 'CERTIFICATE', body: der }), privateKeyPem: privateKey };
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
  // keyEncipherment (RSA key transport) has no meaning for an EC key: ECDHE-ECDSA only signs.
  const keyUsage = options.keyType === 'ec' ? { digitalSignature: true } : { digitalSignature: true, keyEncipherment: true };
  const altNames = (options.subjectAltNames ?? []).map((name) =>
    isIP(name) ? { type: 7, ip: name } : { type: 2, value: name },
  );
  return build(options, issuer, [
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', ...keyUsage, critical: true },
    { name: 'extKeyUsage', serverAuth: usage.includes('serverAuth'), clientAuth: usage.includes('clientAuth') },
    ...(altNames.length ? [{ name: 'subjectAltName', altNames }] : []),
  ]);
}

/** A TLS server certificate for the given host names and IP addresses; P-256 unless `rsa` is asked for. */
export function createServerCertificate(issuer: Issued, hosts: string[], keyType: KeyType = 'ec'): Issued {
  const unique = [...new Set(hosts)];
  return createLeaf(issuer, {
    keyType,
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
