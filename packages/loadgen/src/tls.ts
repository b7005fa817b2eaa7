import { createRootCa, createServerCertificate } from '@opendps/pki';

/** A throwaway CA and a server certificate for loopback (`localhost`, 127.0.0.1, ::1). */
export interface LoopbackTls {
  /** The CA certificate devices trust (PEM). */
  ca: string;
  cert: string;
  key: string;
}

export function createLoopbackTls(): LoopbackTls {
  const ca = createRootCa({ commonName: 'OpenDPS loadgen test CA', validityDays: 2 });
  // mqtt.js sends no SNI for IP addresses, so the IPs must be in the SAN too (docs/device-wire.md §7).
  const server = createServerCertificate(ca, ['localhost', '127.0.0.1', '::1']);
  return { ca: ca.certificatePem, cert: server.certificatePem, key: server.privateKeyPem };
}
