import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { connect, createServer } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { createIntermediateCa, createLeaf, createRootCa, createServerCertificate } from '@opendps/pki';

describe('pki', () => {
  const root = createRootCa({ commonName: 'OpenDPS Test Root' });
  const intermediate = createIntermediateCa(root, { commonName: 'OpenDPS Test Intermediate' });

  it('issues a chain that node:crypto verifies link by link', () => {
    const leaf = createLeaf(intermediate, { commonName: 'device-1' });
    const rootCert = new X509Certificate(root.certificatePem);
    const intermediateCert = new X509Certificate(intermediate.certificatePem);
    const leafCert = new X509Certificate(leaf.certificatePem);
    expect(rootCert.ca).toBe(true);
    expect(intermediateCert.ca).toBe(true);
    expect(leafCert.ca).toBe(false);
    expect(leafCert.checkIssued(intermediateCert)).toBe(true);
    expect(leafCert.verify(intermediateCert.publicKey)).toBe(true);
    expect(intermediateCert.verify(rootCert.publicKey)).toBe(true);
    expect(leafCert.verify(rootCert.publicKey)).toBe(false);
    expect(leafCert.subject).toBe('CN=device-1');
    expect(leafCert.checkPrivateKey(require('node:crypto').createPrivateKey(leaf.privateKeyPem))).toBe(true);
  });

  it('puts DNS names and IP addresses in a server certificate', () => {
    const server = new X509Certificate(createServerCertificate(root, ['localhost', '127.0.0.1', 'dps.example']).certificatePem);
    expect(server.checkHost('localhost')).toBe('localhost');
    expect(server.checkHost('dps.example')).toBe('dps.example');
    expect(server.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(server.checkHost('other.example')).toBeUndefined();
  });

  it('honours explicit validity (for expired-certificate tests)', () => {
    const expired = createLeaf(root, { commonName: 'old', notBefore: new Date('2020-01-01'), notAfter: new Date('2021-01-01') });
    expect(new Date(new X509Certificate(expired.certificatePem).validTo).getUTCFullYear()).toBe(2021);
  });

  it('issues a P-256 server certificate by default, signed by the RSA CA, that serves TLS 1.3', async () => {
    const issued = createServerCertificate(root, ['localhost', '127.0.0.1']);
    const certificate = new X509Certificate(issued.certificatePem);
    const rootCert = new X509Certificate(root.certificatePem);
    expect(certificate.publicKey.asymmetricKeyType).toBe('ec');
    expect(certificate.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(certificate.checkIssued(rootCert)).toBe(true);
    expect(certificate.verify(rootCert.publicKey)).toBe(true);
    expect(certificate.checkPrivateKey(createPrivateKey(issued.privateKeyPem))).toBe(true);
    expect(certificate.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(certificate.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    // The SKI is the key's own (SHA-1 of its point), not that of the stand-in key forge assembled around.
    const point = certificate.publicKey.export({ type: 'spki', format: 'der' }).subarray(-65);
    const ski = Buffer.concat([Buffer.from([0x04, 0x14]), createHash('sha1').update(point).digest()]);
    expect(certificate.raw.includes(ski)).toBe(true);

    const server = createServer({ cert: issued.certificatePem, key: issued.privateKeyPem }, (socket) => socket.end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const client = connect({ port, host: '127.0.0.1', servername: 'localhost', ca: root.certificatePem });
      await new Promise<void>((resolve, reject) => {
        client.once('secureConnect', resolve);
        client.once('error', reject);
      });
      expect(client.authorized).toBe(true);
      expect(client.getProtocol()).toBe('TLSv1.3');
      expect(client.getPeerX509Certificate()?.publicKey.asymmetricKeyType).toBe('ec');
      client.destroy();
    } finally {
      server.close();
    }
  });

  it('issues an RSA-2048 server certificate when asked', () => {
    const certificate = new X509Certificate(createServerCertificate(root, ['localhost'], 'rsa').certificatePem);
    expect(certificate.publicKey.asymmetricKeyType).toBe('rsa');
    expect(certificate.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(certificate.verify(new X509Certificate(root.certificatePem).publicKey)).toBe(true);
  });
});
