import { X509Certificate } from 'node:crypto';
import { createVerificationCode, validateCaCertificate, verifyProofOfPossession } from '@opendps/attestation';
import { thumbprint } from '@opendps/model';
import { createIntermediateCa, createLeaf, createRootCa, createVerificationCertificate, type Issued } from '@opendps/pki';

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

describe('CA proof of possession', () => {
  let ca: Issued;
  let otherCa: Issued;
  let code: string;

  beforeAll(() => {
    ca = createRootCa({ commonName: 'PoP Root' });
    otherCa = createRootCa({ commonName: 'PoP Other Root' });
    code = createVerificationCode();
  });

  it('creates random 48-character upper-case hex codes', () => {
    expect(code).toMatch(/^[0-9A-F]{48}$/);
    expect(createVerificationCode()).not.toBe(code);
  });

  it('accepts a certificate signed by the CA whose CN is the code, in any case', () => {
    expect(() => verifyProofOfPossession(x509(ca), x509(createVerificationCertificate(ca, code)), code)).not.toThrow();
    const lower = createVerificationCertificate(ca, code.toLowerCase());
    expect(() => verifyProofOfPossession(x509(ca), x509(lower), code)).not.toThrow();
  });

  it('refuses a certificate signed by another CA', () => {
    const error = refusal(() => verifyProofOfPossession(x509(ca), x509(createVerificationCertificate(otherCa, code)), code));
    expect(error).toMatchObject({ status: 400, errorCode: 400005, message: 'The verification certificate is not signed by the CA certificate.' });
  });

  it('refuses a self-signed certificate carrying the code', () => {
    const forged = createLeaf(undefined, { commonName: code });
    const error = refusal(() => verifyProofOfPossession(x509(ca), x509(forged), code));
    expect(error).toMatchObject({ errorCode: 400005, message: 'The verification certificate is not signed by the CA certificate.' });
  });

  it('refuses a CN that is not the code', () => {
    const error = refusal(() => verifyProofOfPossession(x509(ca), x509(createVerificationCertificate(ca, 'ABC123')), code));
    expect(error).toMatchObject({ errorCode: 400005, message: "The verification certificate's common name 'ABC123' is not the verification code." });
  });

  it('refuses an expired or not yet valid verification certificate', () => {
    const expired = createLeaf(ca, { commonName: code, notBefore: new Date(Date.now() - 3 * DAY), notAfter: new Date(Date.now() - DAY) });
    expect(refusal(() => verifyProofOfPossession(x509(ca), x509(expired), code))).toMatchObject({
      errorCode: 400005,
      message: 'The verification certificate has expired.',
    });
    const early = createLeaf(ca, { commonName: code, notBefore: new Date(Date.now() + DAY) });
    expect(refusal(() => verifyProofOfPossession(x509(ca), x509(early), code))).toMatchObject({
      errorCode: 400005,
      message: 'The verification certificate is not valid yet.',
    });
  });

  it('checks validity against the given instant', () => {
    const proof = x509(createVerificationCertificate(ca, code));
    expect(refusal(() => verifyProofOfPossession(x509(ca), proof, code, new Date(Date.now() + 2 * DAY)))).toMatchObject({
      errorCode: 400005,
      message: 'The verification certificate has expired.',
    });
  });

  it('refuses when no code is pending', () => {
    const proof = x509(createVerificationCertificate(ca, code));
    expect(refusal(() => verifyProofOfPossession(x509(ca), proof, undefined))).toMatchObject({
      errorCode: 400005,
      message: 'No verification code is pending for this CA certificate; generate one first.',
    });
  });
});

describe('validateCaCertificate', () => {
  let root: Issued;

  beforeAll(() => {
    root = createRootCa({ commonName: 'Registered Root' });
  });

  it('accepts a root or an intermediate CA and returns its info', () => {
    const validated = validateCaCertificate(root.certificatePem);
    expect(validated.info.subjectName).toBe('CN=Registered Root');
    expect(validated.info.sha256Thumbprint).toBe(thumbprint(x509(root), 'sha256'));
    expect(validated.x509.ca).toBe(true);
    const intermediate = createIntermediateCa(root, { commonName: 'Registered Intermediate' });
    expect(validateCaCertificate(intermediate.certificatePem).info.issuerName).toBe('CN=Registered Root');
  });

  it('accepts the forms clients send (base64 DER)', () => {
    expect(validateCaCertificate(x509(root).raw.toString('base64')).pem).toBe(x509(root).toString());
  });

  it('refuses a certificate that is not a CA', () => {
    const leaf = createLeaf(root, { commonName: 'not-a-ca' });
    expect(refusal(() => validateCaCertificate(leaf.certificatePem))).toMatchObject({
      status: 400,
      errorCode: 400005,
      message: 'The certificate is not a CA certificate (basic constraints CA:TRUE is required).',
    });
  });

  it('refuses an expired or not yet valid CA', () => {
    const expired = createRootCa({ commonName: 'Expired Root', notBefore: new Date(Date.now() - 3 * DAY), notAfter: new Date(Date.now() - DAY) });
    expect(refusal(() => validateCaCertificate(expired.certificatePem))).toMatchObject({
      errorCode: 400005,
      message: 'The CA certificate has expired.',
    });
    expect(refusal(() => validateCaCertificate(root.certificatePem, new Date(Date.now() - DAY)))).toMatchObject({
      errorCode: 400005,
      message: 'The CA certificate is not valid yet.',
    });
  });

  it('refuses several certificates or garbage', () => {
    const other = createRootCa({ commonName: 'Second Root' });
    expect(refusal(() => validateCaCertificate(root.certificatePem + other.certificatePem))).toMatchObject({
      errorCode: 400005,
      message: 'Exactly one CA certificate is expected, 2 were given.',
    });
    expect(refusal(() => validateCaCertificate('%% not base64 %%'))).toMatchObject({
      errorCode: 400005,
      message: 'The certificate is neither PEM nor base64.',
    });
  });
});
