import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DpsError, certificateInfo, commonName, parseCertificate, parseCertificates } from '@opendps/model';

/** Certificates come from the openssl CLI, and so do the expected values. */
let dir: string;
let v3Pem: string;
let v1Pem: string;
let secondPem: string;

function openssl(args: string[]): string {
  return execFileSync('openssl', args, { stdio: 'pipe' }).toString().trim();
}

function field(file: string, option: string): string {
  return openssl(['x509', '-in', file, '-noout', option, '-nameopt', 'RFC2253']).replace(/^[^=]+=/, '');
}

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'model-certs-'));
  const key = path.join(dir, 'key.pem');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', key, '-out', path.join(dir, 'v3.pem'), '-subj', '/O=Test Org/CN=device-1', '-days', '2']);
  openssl(['req', '-x509', ...ec, '-keyout', path.join(dir, 'k2.pem'), '-out', path.join(dir, 'second.pem'), '-subj', '/CN=second', '-days', '2']);
  openssl(['req', '-new', ...ec, '-keyout', path.join(dir, 'k1.pem'), '-out', path.join(dir, 'v1.csr'), '-subj', '/CN=legacy']);
  openssl(['x509', '-req', '-in', path.join(dir, 'v1.csr'), '-signkey', path.join(dir, 'k1.pem'), '-days', '2', '-out', path.join(dir, 'v1.pem')]);
  v3Pem = readFileSync(path.join(dir, 'v3.pem'), 'utf8');
  v1Pem = readFileSync(path.join(dir, 'v1.pem'), 'utf8');
  secondPem = readFileSync(path.join(dir, 'second.pem'), 'utf8');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function base64Body(pem: string): string {
  return pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
}

function errorCode(run: () => unknown): number | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    return error instanceof DpsError ? error.errorCode : -1;
  }
}

describe('parseCertificate accepts every form clients send (docs/service-rest.md §4)', () => {
  it('reads PEM, one-line PEM (C#), base64 DER (Azure CLI) and base64 of the PEM (C client) as the same certificate', () => {
    const forms = {
      pem: v3Pem,
      oneLinePem: `-----BEGIN CERTIFICATE-----${base64Body(v3Pem)}-----END CERTIFICATE-----`,
      base64Der: base64Body(v3Pem),
      base64OfPem: Buffer.from(v3Pem, 'utf8').toString('base64'),
    };
    const der = Buffer.from(base64Body(v3Pem), 'base64');
    for (const [form, text] of Object.entries(forms)) {
      const parsed = parseCertificate(text);
      expect({ form, same: parsed.der.equals(der) }).toEqual({ form, same: true });
      expect(parsed.pem).toContain('-----BEGIN CERTIFICATE-----');
    }
    expect(forms.base64OfPem.startsWith('LS0tLS1CRUdJTi')).toBe(true);
  });

  it('returns every certificate of a chain, leaf first', () => {
    const chain = parseCertificates(`${v3Pem}\n${secondPem}`);
    expect(chain.map((c) => commonName(c.x509))).toEqual(['device-1', 'second']);
  });

  it('refuses empty, non-string, non-base64 and undecodable input with 400005', () => {
    expect(errorCode(() => parseCertificate(''))).toBe(400005);
    expect(errorCode(() => parseCertificate(42 as unknown as string))).toBe(400005);
    expect(errorCode(() => parseCertificate('not a certificate!'))).toBe(400005);
    expect(errorCode(() => parseCertificate('-----BEGIN CERTIFICATE-----\n@@@@\n-----END CERTIFICATE-----'))).toBe(400005);
    expect(errorCode(() => parseCertificate(Buffer.from('hello world').toString('base64')))).toBe(400005);
    expect(errorCode(() => parseCertificate('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----'))).toBe(400005);
  });
});

describe('certificateInfo', () => {
  it('matches what openssl reports, in the DPS format', () => {
    const file = path.join(dir, 'v3.pem');
    const info = certificateInfo(parseCertificate(v3Pem));
    expect(info.subjectName).toBe(field(file, '-subject').replace(/,/g, ', '));
    expect(info.subjectName).toBe('CN=device-1, O=Test Org');
    expect(info.issuerName).toBe(info.subjectName);
    expect(info.sha1Thumbprint).toBe(field(file, '-fingerprint').replace(/:/g, ''));
    expect(info.sha256Thumbprint).toBe(openssl(['x509', '-in', file, '-noout', '-fingerprint', '-sha256']).split('=')[1]!.replace(/:/g, ''));
    expect(info.serialNumber).toBe(field(file, '-serial').toUpperCase());
    expect(new Date(info.notBeforeUtc).getTime()).toBe(new Date(field(file, '-startdate')).getTime());
    expect(new Date(info.notAfterUtc).getTime()).toBe(new Date(field(file, '-enddate')).getTime());
    expect(info.notAfterUtc).toMatch(/\.\d{7}Z$/);
    expect(info.version).toBe(3);
  });

  it('reads the version of a v1 certificate', () => {
    expect(certificateInfo(parseCertificate(v1Pem)).version).toBe(1);
  });
});
