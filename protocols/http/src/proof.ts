import type { IncomingMessage } from 'node:http';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import type { Proof } from '@opendps/registration';
import type { DeviceRegistrationBody } from './request-body';

/**
 * What the device presented, in the order DPS devices use them (device-protocols.md §4):
 * TPM keys in the body (the first PUT has no Authorization, the second carries the TPM SAS);
 * a SAS in `Authorization`; else a client certificate from the TLS handshake; else nothing.
 */
export function proofOf(req: IncomingMessage, body: DeviceRegistrationBody): Proof {
  const authorization = req.headers.authorization;
  const token = authorization !== undefined && authorization !== '' ? authorization : undefined;
  if (body.tpm) {
    return {
      kind: 'tpm',
      endorsementKey: body.tpm.endorsementKey,
      ...(body.tpm.storageRootKey !== undefined ? { storageRootKey: body.tpm.storageRootKey } : {}),
      ...(token !== undefined ? { token } : {}),
    };
  }
  if (token !== undefined) return { kind: 'sas', token };
  const chain = peerCertificateChain(req.socket);
  if (chain.length > 0) return { kind: 'x509', chain };
  return { kind: 'none' };
}

/**
 * The client certificate chain from the TLS handshake, leaf first, DER, as Node links it through
 * `issuerCertificate`. Stops at a self-signed root (Node links it to itself) or at a repeat.
 * Nothing is verified here: the server requests certificates without rejecting unknown ones.
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
