import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';

/**
 * The certificate chain a client presented in its TLS handshake, DER, leaf first, as Node links it
 * through `issuerCertificate`; stops at a self-signed root (Node links it to itself) or at a repeat.
 * Empty for a plain socket or when no certificate was sent. Nothing is verified here: listeners
 * request certificates without rejecting unknown ones, and attestation judges the chain.
 */
export function peerCertificateChain(socket: unknown): Buffer[] {
  const tls = socket as Partial<TLSSocket> | undefined;
  if (typeof tls?.getPeerCertificate !== 'function') return [];
  const chain: Buffer[] = [];
  let certificate: DetailedPeerCertificate | undefined = tls.getPeerCertificate(true);
  while (certificate && Buffer.isBuffer(certificate.raw) && certificate.raw.length > 0) {
    const raw = certificate.raw;
    if (chain.some((seen) => seen.equals(raw))) break;
    chain.push(raw);
    const issuer: DetailedPeerCertificate | undefined = certificate.issuerCertificate;
    if (!issuer || issuer === certificate) break;
    certificate = issuer;
  }
  return chain;
}
