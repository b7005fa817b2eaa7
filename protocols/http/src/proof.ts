import type { IncomingMessage } from 'node:http';
import { peerCertificateChain } from '@opendps/model';
import type { Proof, RegisterBody } from '@opendps/registration';

/**
 * What the device presented, in the order DPS devices use them (docs/device-wire.md §4):
 * TPM keys in the body (the first PUT has no Authorization, the second carries the TPM SAS);
 * a SAS in `Authorization`; else a client certificate from the TLS handshake; else nothing.
 */
export function proofOf(req: IncomingMessage, body: RegisterBody): Proof {
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
