import { X509Certificate, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { createRootCa } from '@opendps/pki';
import { createDeviceCertificateIssuer } from '../src/x509';

describe('device certificates issued on the fly', () => {
  const rsaCa = createRootCa({ commonName: 'Loadgen Test CA', organization: 'OpenDPS' });

  it('names the registration id as CN, chains to the RSA CA and verifies with its key', () => {
    const issuer = createDeviceCertificateIssuer(rsaCa.certificatePem, rsaCa.privateKeyPem);
    const { cert, key } = issuer.issue('device-42');
    const x509 = new X509Certificate(cert);
    const ca = new X509Certificate(rsaCa.certificatePem);
    expect(x509.subject).toBe('CN=device-42');
    expect(x509.issuer).toBe(ca.subject);
    expect(x509.checkIssued(ca)).toBe(true);
    expect(x509.verify(ca.publicKey)).toBe(true);
    expect(x509.checkPrivateKey(createPrivateKey(key))).toBe(true);
    expect(x509.ca).toBe(false);
    expect(x509.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
  });

  it('refuses a CA key that does not match the CA certificate', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    expect(() => createDeviceCertificateIssuer(rsaCa.certificatePem, pem)).toThrow(/does not belong/);
  });

  it('encodes every serial as DER allows (a random first byte of 0 would be illegal padding)', () => {
    const issuer = createDeviceCertificateIssuer(rsaCa.certificatePem, rsaCa.privateKeyPem);
    // One serial in 128 started with a zero byte before the fix: 1,000 certificates all but surely meet one.
    for (let index = 0; index < 1000; index += 1) expect(() => new X509Certificate(issuer.issue(`d${index}`).cert)).not.toThrow();
  });

  it('issues a distinct key and serial each time', () => {
    const issuer = createDeviceCertificateIssuer(rsaCa.certificatePem, rsaCa.privateKeyPem);
    const a = new X509Certificate(issuer.issue('same').cert);
    const b = new X509Certificate(issuer.issue('same').cert);
    expect(a.serialNumber).not.toBe(b.serialNumber);
    expect(a.fingerprint256).not.toBe(b.fingerprint256);
  });
});
