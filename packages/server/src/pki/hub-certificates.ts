import { X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import { createServerCertificate, type Issued } from '@opendps/pki';

export type SniCallback = (servername: string, done: (error: Error | null, context?: SecureContext) => void) => void;

/**
 * TLS SNI for built-in hubs served on the device listeners. Their host names are not known when the
 * development server certificate is issued (hubs are linked at run time), and a wildcard such as
 * `*.localhost` matches nothing for TLS clients (two labels). So a client that names a running hub
 * the certificate does not cover gets a certificate for exactly that name from the development CA,
 * issued once and kept; every other name gets the server certificate.
 */
export function hubSniCallback(options: { ca: Issued; server: Issued; isHubHost(name: string): boolean }): SniCallback {
  const server = new X509Certificate(options.server.certificatePem);
  // Only names of running hubs are kept, so this stays as small as the hub list.
  const contexts = new Map<string, SecureContext | undefined>();
  return (servername, done) => {
    const name = servername.toLowerCase();
    if (!options.isHubHost(name)) return done(null, undefined);
    if (!contexts.has(name)) {
      let context: SecureContext | undefined;
      if (server.checkHost(name) === undefined) {
        const issued = createServerCertificate(options.ca, [name]);
        context = createSecureContext({ cert: `${issued.certificatePem.trim()}\n`, key: issued.privateKeyPem });
      }
      contexts.set(name, context);
    }
    done(null, contexts.get(name));
  };
}
