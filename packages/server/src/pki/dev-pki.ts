import { X509Certificate, createPrivateKey } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { createRootCa, createServerCertificate, type Issued, type KeyType } from '@opendps/pki';

/**
 * The development PKI in the data directory: a root CA made on first start and a server
 * certificate it signs. Later starts reuse both; the server certificate is re-issued (by the same
 * CA) when it no longer covers the host names, is about to expire, or has another key type than
 * one explicitly asked for. A new server key is P-256: its TLS handshake costs the server much
 * less than RSA-2048's; `rsa` serves devices whose TLS stack has no ECDSA. A server certificate
 * that no development CA issued is the operator's: it is used as it is, never replaced.
 */
export interface DevPki {
  /** Absolute path of ca.pem: what clients trust (NODE_EXTRA_CA_CERTS, `ca` options). */
  caFile: string;
  ca: Issued;
  server: Issued;
  /** Whether this start created the CA or the server certificate. */
  created: { ca: boolean; server: boolean };
  /** The server certificate in the data directory was not issued by a development CA (kept as it is). */
  foreignServer: boolean;
}

const RENEW_BEFORE_MS = 7 * 24 * 3600_000;
/** What every development CA is named: how a server certificate it issued is recognised. */
const DEV_CA_SUBJECT = { commonName: 'OpenDPS Development Root CA', organization: 'OpenDPS' };

export function serverHostNames(host: string): string[] {
  return [...new Set(['localhost', '127.0.0.1', '::1', host])];
}

/** The development PKI from the data directory alone (one node, or the embedded store). */
export function ensureDevPki(dataDir: string, host: string, keyType?: KeyType): DevPki {
  return settle(dataDir, host, undefined, keyType);
}

/**
 * Nodes sharing a store share one development CA and server certificate: the first node stores
 * its own (create-if-absent), every other node adopts what is stored and writes it to its data
 * directory. A node whose host names the shared server certificate does not cover issues its own
 * from the shared CA.
 */
export interface SharedPki {
  get(): Promise<{ ca: Issued; server: Issued } | undefined>;
  /** Stores `offer` unless something is stored already; resolves with what is stored. */
  createIfAbsent(offer: { ca: Issued; server: Issued }): Promise<{ ca: Issued; server: Issued }>;
}

export async function ensureSharedDevPki(dataDir: string, host: string, shared: SharedPki, keyType?: KeyType): Promise<DevPki> {
  let stored = await shared.get();
  if (!stored) {
    const local = settle(dataDir, host, undefined, keyType);
    stored = await shared.createIfAbsent({ ca: local.ca, server: local.server });
    if (stored.ca.certificatePem === local.ca.certificatePem) return local;
  }
  return settle(dataDir, host, stored, keyType);
}

function settle(dataDir: string, host: string, shared?: { ca: Issued; server: Issued }, keyType?: KeyType): DevPki {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const files = {
    ca: join(dataDir, 'ca.pem'),
    caKey: join(dataDir, 'ca-key.pem'),
    server: join(dataDir, 'server.pem'),
    serverKey: join(dataDir, 'server-key.pem'),
  };
  const created = { ca: false, server: false };

  let ca = readPair(files.ca, files.caKey);
  if (shared && ca?.certificatePem !== shared.ca.certificatePem) {
    ca = shared.ca;
    writePair(ca, files.ca, files.caKey);
  }
  if (!ca) {
    ca = createRootCa(DEV_CA_SUBJECT);
    writePair(ca, files.ca, files.caKey);
    created.ca = true;
  }

  const hosts = serverHostNames(host);
  let server = readPair(files.server, files.serverKey);
  if (server && !issuedByDevCa(server.certificatePem)) {
    const problem = unusable(server);
    if (problem) {
      throw new Error(
        `${files.server} was not issued by the OpenDPS development CA and cannot be used (${problem}); ` +
          'fix it, remove it (a development certificate is then issued), or pass --tls-cert and --tls-key.',
      );
    }
    return { caFile: files.ca, ca, server, created, foreignServer: true };
  }
  if (!server || !serverCertificateFits(server.certificatePem, ca.certificatePem, hosts, keyType)) {
    server =
      shared && serverCertificateFits(shared.server.certificatePem, ca.certificatePem, hosts, keyType)
        ? shared.server
        : ((created.server = true), createServerCertificate(ca, hosts, keyType ?? 'ec'));
    writePair(server, files.server, files.serverKey);
  }
  return { caFile: files.ca, ca, server, created, foreignServer: false };
}

/**
 * Signed by this CA, valid for a while yet, naming every host (checked as TLS clients would) and
 * holding a key of `keyType` when one is given.
 */
export function serverCertificateFits(certificatePem: string, caPem: string, hosts: string[], keyType?: KeyType): boolean {
  try {
    const certificate = new X509Certificate(certificatePem);
    const ca = new X509Certificate(caPem);
    if (keyType && certificate.publicKey.asymmetricKeyType !== keyType) return false;
    if (!certificate.checkIssued(ca) || !certificate.verify(ca.publicKey)) return false;
    if (Date.parse(certificate.validTo) - Date.now() < RENEW_BEFORE_MS) return false;
    return hosts.every((name) =>
      isIP(name) ? certificate.checkIP(name) !== undefined : certificate.checkHost(name) !== undefined,
    );
  } catch {
    return false;
  }
}

/** Whether a development CA (this node's or another's) issued it: only those are ours to replace. */
function issuedByDevCa(certificatePem: string): boolean {
  try {
    const issuer = new X509Certificate(certificatePem).issuer.split('\n');
    return issuer.includes(`CN=${DEV_CA_SUBJECT.commonName}`) && issuer.includes(`O=${DEV_CA_SUBJECT.organization}`);
  } catch {
    return false;
  }
}

/** Why a certificate and key cannot serve TLS, or undefined when they can. */
export function unusable(pair: Issued, now = Date.now()): string | undefined {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(pair.certificatePem);
  } catch {
    return 'the certificate is not PEM X.509';
  }
  try {
    if (!certificate.checkPrivateKey(createPrivateKey(pair.privateKeyPem))) return 'the key does not match the certificate';
  } catch {
    return 'the key is not a PEM private key';
  }
  if (Date.parse(certificate.validTo) <= now) return `the certificate expired on ${certificate.validTo}`;
  if (Date.parse(certificate.validFrom) > now) return `the certificate is not valid before ${certificate.validFrom}`;
  return undefined;
}

function readPair(certificateFile: string, keyFile: string): Issued | undefined {
  if (!existsSync(certificateFile) || !existsSync(keyFile)) return undefined;
  return { certificatePem: readFileSync(certificateFile, 'utf8'), privateKeyPem: readFileSync(keyFile, 'utf8') };
}

function writePair(issued: Issued, certificateFile: string, keyFile: string): void {
  writeFileSync(keyFile, issued.privateKeyPem, { mode: 0o600 });
  chmodSync(keyFile, 0o600); // `mode` applies only when the file is new
  writeFileSync(certificateFile, issued.certificatePem, { mode: 0o644 });
}
