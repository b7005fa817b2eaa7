import { X509Certificate } from 'node:crypto';
import { basicConstraints, MAX_CHAIN_LENGTH, parseClientChain, verifyCertificateChain } from '@opendps/attestation';
import { createIntermediateCa, createLeaf, createRootCa, type Issued } from '@opendps/pki';

const DAY = 24 * 3600_000;
const x509 = (issued: Issued): X509Certificate => new X509Certificate(issued.certificatePem);

function refusal(fn: () => unknown): { errorCode?: number; status?: number; message: string } {
  try {
    fn();
  } catch (error) {
    return error as { errorCode?: number; status?: number; message: string };
  }
  throw new Error('expected a refusal');
}

// Generated once with OpenSSL 3 (EC P-256, valid 2026-2126): a root with pathlen:0, an intermediate
// under it, a leaf under the intermediate and a leaf directly under the root. `openssl verify`
// reports "path length constraint exceeded" for the first leaf and OK for the second.
const PATHLEN_FIXTURES = [
  `-----BEGIN CERTIFICATE-----
MIIBbjCCARSgAwIBAgIBATAKBggqhkjOPQQDAjAcMRowGAYDVQQDDBFQYXRoTGVu
IFplcm8gUm9vdDAgFw0yNjExMjYxMDEwMDZaGA8yMTI2MTEwMjEwMTAwNlowHDEa
MBgGA1UEAwwRUGF0aExlbiBaZXJvIFJvb3QwWTATBgcqhkjOPQIBBggqhkjOPQMB
BwNCAARqaXGvpTVp4wrYEeJjfnSMvGp4JpcUypE7Aadnu5qXGPmWOqRORmJ2h80F
IUDmeiQH5B+Q075jfwHTiwlVkIBKo0UwQzASBgNVHRMBAf8ECDAGAQH/AgEAMA4G
A1UdDwEB/wQEAwIBBjAdBgNVHQ4EFgQUWJSM5lNQT1993/iBCLpW5c/6UpcwCgYI
KoZIzj0EAwIDSAAwRQIgZEq4YPtTc4O9cXDTOFbKcMho4OJpQe6ojwiZaabxZ38C
IQDUx84O1WgLGv2ZSpe7iO7o4eF29tt8UZmFaf8Js5tj8g==
-----END CERTIFICATE-----`,
  `-----BEGIN CERTIFICATE-----
MIIBkDCCATWgAwIBAgIBAjAKBggqhkjOPQQDAjAcMRowGAYDVQQDDBFQYXRoTGVu
IFplcm8gUm9vdDAgFw0yNjExMjYxMDEwMDZaGA8yMTI2MTEwMjEwMTAwNlowHzEd
MBsGA1UEAwwUUGF0aExlbiBJbnRlcm1lZGlhdGUwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAARRjcm6X66s5mcB8cq8Zk9zQVOPtb8XVqI1wL1bFqBSpxlmGg4BoBkw
YlLFUnQdGiJPrqSn1TqtdAUffkAoLkPIo2MwYTAPBgNVHRMBAf8EBTADAQH/MA4G
A1UdDwEB/wQEAwIBBjAdBgNVHQ4EFgQUTIZujN28b758Gw4Z7WCE39EvWHwwHwYD
VR0jBBgwFoAUWJSM5lNQT1993/iBCLpW5c/6UpcwCgYIKoZIzj0EAwIDSQAwRgIh
ALdCB58yh1Gte2QM2XL/qapPJOijU+21I0jqIX3KWczUAiEAoOIlS+ujXAkujdnx
NKjdAGlELWofxAEFp9ygEB7l+UA=
-----END CERTIFICATE-----`,
  `-----BEGIN CERTIFICATE-----
MIIBnDCCAUOgAwIBAgIBAzAKBggqhkjOPQQDAjAfMR0wGwYDVQQDDBRQYXRoTGVu
IEludGVybWVkaWF0ZTAgFw0yNjExMjYxMDEwMDZaGA8yMTI2MTEwMjEwMTAwNlow
GzEZMBcGA1UEAwwQcGF0aGxlbi1kZXZpY2UtMTBZMBMGByqGSM49AgEGCCqGSM49
AwEHA0IABBUzHy7sawypSM6y3x6XVGYZ0PJv3hXQVCf6JPO+2lzDEhu/1eSbJNB9
JTfYf8Bx8ri/j6ilHyZA/x2kEkSd9zajcjBwMAkGA1UdEwQCMAAwDgYDVR0PAQH/
BAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMCMB8GA1UdIwQYMBaAFEyGbozdvG++
fBsOGe1ghN/RL1h8MB0GA1UdDgQWBBThf9cQztDSyBEHTZMJA4MXRDN4eTAKBggq
hkjOPQQDAgNHADBEAiA3wViCV0gYIA1ussDzHljrTNWFclAwPggdJ1Qz9YYH/QIg
e1lG4aecfgRyzSSOCOVpc6poFcKwQ7Hq3FpO2d4p1RU=
-----END CERTIFICATE-----`,
  `-----BEGIN CERTIFICATE-----
MIIBmTCCAUCgAwIBAgIBBDAKBggqhkjOPQQDAjAcMRowGAYDVQQDDBFQYXRoTGVu
IFplcm8gUm9vdDAgFw0yNjExMjYxMDEwMDZaGA8yMTI2MTEwMjEwMTAwNlowGzEZ
MBcGA1UEAwwQcGF0aGxlbi1kZXZpY2UtMjBZMBMGByqGSM49AgEGCCqGSM49AwEH
A0IABD4DVrvbqgqcDI9X7NCGlkMlmbpaUCzFqUesxqHo8yzbIiq6qSDTBS746F2b
9kl6YHL4rFjx5gSN2PpsvtqaS4yjcjBwMAkGA1UdEwQCMAAwDgYDVR0PAQH/BAQD
AgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMCMB8GA1UdIwQYMBaAFFiUjOZTUE9ffd/4
gQi6VuXP+lKXMB0GA1UdDgQWBBR6Fcu7vcQwRJH5ceQ2FKX8z8dI7TAKBggqhkjO
PQQDAgNHADBEAiAsewhEnv06E5yWDuxQdm9oGiojENhkz9yAXu4vFKtVywIgXLI6
gAFqnGBmaZSIsCeswOWBmTQ73ZNO7G2YH3VY37E=
-----END CERTIFICATE-----`,
];

describe('verifyCertificateChain', () => {
  let root: Issued;
  let intermediate1: Issued;
  let intermediate2: Issued;
  let leafOfRoot: Issued;
  let leafOfIntermediate1: Issued;
  let leafOfIntermediate2: Issued;
  let selfSigned: Issued;

  beforeAll(() => {
    root = createRootCa({ commonName: 'Chain Test Root' });
    intermediate1 = createIntermediateCa(root, { commonName: 'Chain Test Intermediate 1' });
    intermediate2 = createIntermediateCa(intermediate1, { commonName: 'Chain Test Intermediate 2' });
    leafOfRoot = createLeaf(root, { commonName: 'device-root' });
    leafOfIntermediate1 = createLeaf(intermediate1, { commonName: 'device-i1' });
    leafOfIntermediate2 = createLeaf(intermediate2, { commonName: 'device-i2' });
    selfSigned = createLeaf(undefined, { commonName: 'device-self' });
  });

  it.each([
    ['depth 1, self-signed', () => [selfSigned]],
    ['depth 1, root left out', () => [leafOfRoot]],
    ['depth 2, with the root', () => [leafOfRoot, root]],
    ['depth 2, root left out', () => [leafOfIntermediate1, intermediate1]],
    ['depth 3, with the root', () => [leafOfIntermediate1, intermediate1, root]],
    ['depth 3, root left out', () => [leafOfIntermediate2, intermediate2, intermediate1]],
    ['depth 4, with the root', () => [leafOfIntermediate2, intermediate2, intermediate1, root]],
  ])('accepts a valid chain: %s', (_name, chain) => {
    expect(() => verifyCertificateChain(chain().map(x509))).not.toThrow();
  });

  it('refuses an expired leaf', () => {
    const expired = createLeaf(root, { commonName: 'old-device', notBefore: new Date(Date.now() - 3 * DAY), notAfter: new Date(Date.now() - DAY) });
    const error = refusal(() => verifyCertificateChain([x509(expired), x509(root)]));
    expect(error.errorCode).toBe(401002);
    expect(error.message).toMatch(/^The client certificate 'old-device' has expired \(not after \d{4}-/);
  });

  it('refuses a leaf that is not valid yet', () => {
    const early = createLeaf(root, { commonName: 'early-device', notBefore: new Date(Date.now() + DAY) });
    const error = refusal(() => verifyCertificateChain([x509(early), x509(root)]));
    expect(error.errorCode).toBe(401002);
    expect(error.message).toMatch(/^The client certificate 'early-device' is not valid yet \(not before /);
  });

  it('checks validity against the given instant', () => {
    const chain = [x509(leafOfRoot), x509(root)];
    const error = refusal(() => verifyCertificateChain(chain, { now: new Date(Date.now() + 2 * 365 * DAY) }));
    expect(error.errorCode).toBe(401002);
    expect(error.message).toMatch(/^The client certificate 'device-root' has expired/);
  });

  it('refuses an expired intermediate', () => {
    const expiredCa = createIntermediateCa(root, {
      commonName: 'Expired Intermediate',
      notBefore: new Date(Date.now() - 10 * DAY),
      notAfter: new Date(Date.now() - DAY),
    });
    const leaf = createLeaf(expiredCa, { commonName: 'device-under-expired' });
    const error = refusal(() => verifyCertificateChain([x509(leaf), x509(expiredCa), x509(root)]));
    expect(error.errorCode).toBe(401002);
    expect(error.message).toMatch(/^The issuer certificate 'Expired Intermediate' has expired/);
  });

  it('refuses a leaf from another CA that has the same name', () => {
    const impostor = createRootCa({ commonName: 'Chain Test Root' });
    const leaf = createLeaf(impostor, { commonName: 'device-impostor' });
    const error = refusal(() => verifyCertificateChain([x509(leaf), x509(root)]));
    expect(error.errorCode).toBe(401002);
    expect(error.message).toBe(
      "The certificate 'device-impostor' was not issued by 'Chain Test Root' (issuer name or key identifier differs).",
    );
  });

  it('refuses a broken signature', () => {
    const der = Buffer.from(x509(leafOfRoot).raw);
    der[der.length - 1] = (der[der.length - 1] ?? 0) ^ 0xff; // the last byte belongs to the signature value
    const error = refusal(() => verifyCertificateChain([new X509Certificate(der), x509(root)]));
    expect(error.errorCode).toBe(401002);
    expect(error.message).toBe("The signature of the certificate 'device-root' does not verify with the key of 'Chain Test Root'.");
  });

  it('refuses an issuer that is not a CA', () => {
    const device = createLeaf(root, { commonName: 'device-as-issuer' });
    const leaf = createLeaf(device, { commonName: 'device-below-device' });
    const error = refusal(() => verifyCertificateChain([x509(leaf), x509(device), x509(root)]));
    expect(error.errorCode).toBe(401002);
    expect(error.message).toBe("The issuer certificate 'device-as-issuer' is not a CA (basic constraints).");
  });

  it('refuses a CA certificate as the leaf', () => {
    const error = refusal(() => verifyCertificateChain([x509(intermediate1), x509(root)]));
    expect(error.errorCode).toBe(401002);
    expect(error.message).toBe("The client certificate 'Chain Test Intermediate 1' is a CA certificate.");
  });

  it('refuses a chain given in the wrong order', () => {
    const error = refusal(() => verifyCertificateChain([x509(leafOfIntermediate1), x509(root), x509(intermediate1)]));
    expect(error.errorCode).toBe(401002);
    expect(error.message).toMatch(/^The certificate 'device-i1' was not issued by 'Chain Test Root'/);
  });

  it('refuses an empty or too long chain', () => {
    expect(refusal(() => verifyCertificateChain([]))).toMatchObject({ errorCode: 401002, message: 'No client certificate was presented.' });
    const long = Array.from({ length: MAX_CHAIN_LENGTH + 1 }, () => x509(leafOfRoot));
    expect(refusal(() => verifyCertificateChain(long))).toMatchObject({
      errorCode: 401002,
      message: `The certificate chain is longer than ${MAX_CHAIN_LENGTH} certificates.`,
    });
  });

  describe('path length constraints (read from the DER; Node does not expose them)', () => {
    const now = new Date('2030-01-01T00:00:00Z');
    const [pathRoot, pathIntermediate, pathLeafDeep, pathLeafDirect] = PATHLEN_FIXTURES.map((pem) => new X509Certificate(pem)) as [
      X509Certificate,
      X509Certificate,
      X509Certificate,
      X509Certificate,
    ];

    it('reads basic constraints', () => {
      expect(basicConstraints(pathRoot)).toEqual({ ca: true, pathLength: 0 });
      expect(basicConstraints(pathIntermediate)).toEqual({ ca: true });
      expect(basicConstraints(pathLeafDeep)).toEqual({ ca: false });
      expect(basicConstraints(x509(root))).toEqual({ ca: true });
    });

    it('accepts a leaf directly under a pathlen:0 root', () => {
      expect(() => verifyCertificateChain([pathLeafDirect, pathRoot], { now })).not.toThrow();
    });

    it('refuses an intermediate under a pathlen:0 root', () => {
      const error = refusal(() => verifyCertificateChain([pathLeafDeep, pathIntermediate, pathRoot], { now }));
      expect(error.errorCode).toBe(401002);
      expect(error.message).toBe("The CA certificate 'PathLen Zero Root' allows 0 intermediate CA certificate(s) below it, the chain has 1.");
    });
  });
});

describe('parseClientChain', () => {
  it('decodes DER certificates from a TLS handshake', () => {
    const root = createRootCa({ commonName: 'Parse Root' });
    const leaf = createLeaf(root, { commonName: 'parse-device' });
    const chain = parseClientChain([x509(leaf).raw, x509(root).raw]);
    expect(chain.map((certificate) => certificate.subject)).toEqual(['CN=parse-device', 'CN=Parse Root']);
  });

  it('refuses garbage with a coded error', () => {
    expect(refusal(() => parseClientChain([Buffer.from('not a certificate')]))).toMatchObject({
      errorCode: 401002,
      message: 'Certificate 0 of the chain could not be decoded.',
    });
    expect(refusal(() => parseClientChain([]))).toMatchObject({ errorCode: 401002, message: 'No client certificate was presented.' });
  });
});
