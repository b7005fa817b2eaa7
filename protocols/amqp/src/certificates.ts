import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';

/**
 * The chain the client presented, DER, leaf first, following `issuerCertificate` links and stopping
 * at a self-signed root (Node links it to itself) or any repeat. Empty when no certificate was sent.
 * Nothing is verified here: the registration service does that against the enrollment.
 * (The MQTT and HTTP front-ends hold the same helper; front-ends do not depend on each other.)
 */
export function peerCertificateChain(socket: TLSSocket): Buffer[] {
  const chain: Buffer[] = [];
  const seen = new Set<string>();
  let certificate: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  while (certificate?.raw && certificate.raw.length > 0 && !seen.has(certificate.fingerprint256)) {
    seen.add(certificate.fingerprint256);
    chain.push(Buffer.from(certificate.raw));
    const issuer: DetailedPeerCertificate | undefined = certificate.issuerCertificate;
    certificate = issuer === certificate ? undefined : issuer;
  }
  return chain;
}
