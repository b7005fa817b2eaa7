import { X509Certificate } from 'node:crypto';
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
});
