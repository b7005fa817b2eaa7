import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';

/**
 * The chain the client presented, DER, leaf first, following `issuerCertificate` links and stopping
 * at a self-signed root (Node links it to itself) or any repeat. Empty when no certificate was sent.
 * Nothing is verified here: the registration service does that against the enrollment.
 */
export function peerCertificateChain(socket: TLSSocket): Buffer[] {
  const chain: Buffer[] = [];
  const seen = new Set<string>();
  let certificate: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  while (certificate && certificate.raw && certificate.raw.length > 0) {
    const fingerprint = certificate.fingerprint256;
    if (seen.has(fingerprint)) break;
    seen.add(fingerprint);
    chain.push(Buffer.from(certificate.raw));
    const issuer: DetailedPeerCertificate | undefined = certificate.issuerCertificate;
    if (!issuer || issuer === certificate) break;
    certificate = issuer;
  }
  return chain;
}
