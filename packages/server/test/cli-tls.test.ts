import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { createRootCa, createServerCertificate, type Issued } from '@opendps/pki';
import { portOf } from './admin-support';
import { startCliServer, tempDir } from './support';

function served(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      const fingerprint = socket.getPeerCertificate().fingerprint256;
      socket.destroy();
      resolve(fingerprint);
    });
    socket.on('error', reject);
  });
}

describe('opendps start --tls-cert/--tls-key', () => {
  it('serves the files, and SIGHUP reloads them without ending the process', async () => {
    const dir = tempDir();
    const ca = createRootCa({ commonName: 'Example Corp Root', organization: 'Example Corp' });
    const install = (issued: Issued): void => {
      writeFileSync(join(dir.path, 'tls.pem'), `${issued.certificatePem.trim()}\n${ca.certificatePem}`);
      writeFileSync(join(dir.path, 'tls-key.pem'), issued.privateKeyPem);
    };
    const first = createServerCertificate(ca, ['localhost']);
    const second = createServerCertificate(ca, ['localhost']);
    install(first);
    try {
      const server = await startCliServer(join(dir.path, 'data'), ['--tls-cert', join(dir.path, 'tls.pem'), '--tls-key', join(dir.path, 'tls-key.pem')]);
      const port = portOf(server.connection.endpoints.https);
      expect(await served(port, ca.certificatePem)).toBe(new X509Certificate(first.certificatePem).fingerprint256);
      install(second);
      const reloaded = new Promise<void>((resolve) => {
        const check = (): void => {
          if (server.stdout().includes('TLS certificate reloaded')) resolve();
          else setTimeout(check, 20);
        };
        check();
      });
      server.child.kill('SIGHUP');
      await reloaded;
      expect(server.child.exitCode).toBeNull();
      expect(await served(port, ca.certificatePem)).toBe(new X509Certificate(second.certificatePem).fingerprint256);
      expect(await server.stop()).toBe(0);
      expect(server.stderr()).toBe('');
    } finally {
      dir.remove();
    }
  }, 30_000);
});
