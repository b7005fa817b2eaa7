import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { createRootCa, createServerCertificate, type Issued, type KeyType } from '@opendps/pki';

/**
 * The development PKI in the data directory: a root CA made on first start and a server
 * certificate it signs. Later starts reuse both; the server certificate is re-issued (by the same
 * CA) when it no longer covers the host names, is about to expire, or has another key type than
 * one explicitly asked for. A new server key is P-256: its TLS handshake costs the server much
 * less than RSA-2048's; `rsa` serves devices whose TLS stack has no ECDSA.
 */
export interface DevPki {
  /** Absolute path of ca.pem: what clients trust (NODE_EXTRA_CA_CERTS, `ca` options). */
  caFile: string;
  ca: Issued;
  server: Issued;
  /** Whether this start created the CA or the server certificate. */
  created: { ca: boolean; server: boolean };
}

const RENEW_BEFORE_MS = 7 * 24 * 3600_000;

export function serverHostNames(host: string): string[] {
  return [...new Set(['localhost', '127.0.0.1', '::1', host])];
}

export function ensureDevPki(dataDir: string, host: string, keyType?: KeyType): DevPki {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const files = {
    ca: join(dataDir, 'ca.pem'),
    caKey: join(dataDir, 'ca-key.pem'),
    server: join(dataDir, 'server.pem'),
    serverKey: join(dataDir, 'server-key.pem'),
  };
  const created = { ca: false, server: false };

  let ca = readPair(files.ca, files.caKey);
  if (!ca) {
    ca = createRootCa({ commonName: 'OpenDPS Development Root CA', organization: 'OpenDPS' });
    writePair(ca, files.ca, files.caKey);
    created.ca = true;
  }

  const hosts = serverHostNames(host);
  let server = readPair(files.server, files.serverKey);
  if (!server || !serverCertificateFits(server.certificatePem, ca.certificatePem, hosts, keyType)) {
    server = createServerCertificate(ca, hosts, keyType ?? 'ec');
    writePair(server, files.server, files.serverKey);
    created.server = true;
  }
  return { caFile: files.ca, ca, server, created };
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

function readPair(certificateFile: string, keyFile: string): Issued | undefined {
  if (!existsSync(certificateFile) || !existsSync(keyFile)) return undefined;
  return { certificatePem: readFileSync(certificateFile, 'utf8'), privateKeyPem: readFileSync(keyFile, 'utf8') };
}

function writePair(issued: Issued, certificateFile: string, keyFile: string): void {
  writeFileSync(keyFile, issued.privateKeyPem, { mode: 0o600 });
  chmodSync(keyFile, 0o600); // `mode` applies only when the file is new
  writeFileSync(certificateFile, issued.certificatePem, { mode: 0o644 });
}
