import type { Socket } from 'node:net';
import { peerCertificateChain } from '@opendps/model';
import type { Transport } from '@opendps/registration';

/** What a front-end knows of a device connection before the protocol starts. */
export interface ConnectionContext<T extends Transport = Transport> {
  transport: T;
  remoteAddress?: string;
  /** The chain presented in the TLS handshake, DER, leaf first; unverified. */
  clientCertificateChain?: Buffer[];
}

/** The context of a TLS socket (or of the socket under a WebSocket upgrade). */
export function connectionContext<T extends Transport>(socket: Socket, transport: T): ConnectionContext<T> {
  const chain = peerCertificateChain(socket);
  return {
    transport,
    ...(socket.remoteAddress ? { remoteAddress: socket.remoteAddress } : {}),
    ...(chain.length > 0 ? { clientCertificateChain: chain } : {}),
  };
}
