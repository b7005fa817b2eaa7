import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ensureDevPki } from '../src/pki/dev-pki';
import { tempDir } from './support';

describe('development PKI', () => {
  const dir = tempDir();
  afterAll(() => dir.remove());

  it('creates a CA and a server certificate it signs, for localhost, 127.0.0.1, ::1 and the host', () => {
    const pki = ensureDevPki(dir.path, 'dps.example');
    expect(pki.created).toEqual({ ca: true, server: true });
    expect(pki.caFile).toBe(join(dir.path, 'ca.pem'));
    const ca = new X509Certificate(readFileSync(join(dir.path, 'ca.pem')));
    const server = new X509Certificate(readFileSync(join(dir.path, 'server.pem')));
    expect(ca.ca).toBe(true);
    expect(server.checkIssued(ca)).toBe(true);
    expect(server.verify(ca.publicKey)).toBe(true);
    for (const name of ['localhost', 'dps.example']) expect(server.checkHost(name)).toBe(name);
    for (const ip of ['127.0.0.1', '::1']) expect(server.checkIP(ip)).toBeDefined();
    expect(server.checkHost('other.example')).toBeUndefined();
    expect(statSync(join(dir.path, 'ca-key.pem')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir.path, 'server-key.pem')).mode & 0o777).toBe(0o600);
  });

  it('reuses both on a later start with a covered host', () => {
    const before = readFileSync(join(dir.path, 'server.pem'), 'utf8');
    const pki = ensureDevPki(dir.path, 'localhost');
    expect(pki.created).toEqual({ ca: false, server: false });
    expect(pki.server.certificatePem).toBe(before);
  });

  it('re-issues only the server certificate, from the same CA, when the host is not covered', () => {
    const caBefore = readFileSync(join(dir.path, 'ca.pem'), 'utf8');
    const pki = ensureDevPki(dir.path, '10.1.2.3');
    expect(pki.created).toEqual({ ca: false, server: true });
    expect(readFileSync(join(dir.path, 'ca.pem'), 'utf8')).toBe(caBefore);
    const server = new X509Certificate(pki.server.certificatePem);
    expect(server.checkIP('10.1.2.3')).toBe('10.1.2.3');
    expect(server.checkIssued(new X509Certificate(caBefore))).toBe(true);
  });

  it('re-issues a server certificate that another CA signed', () => {
    const other = tempDir();
    try {
      const foreign = ensureDevPki(other.path, 'localhost');
      // Put the foreign server certificate next to our CA.
      require('node:fs').writeFileSync(join(dir.path, 'server.pem'), foreign.server.certificatePem);
      require('node:fs').writeFileSync(join(dir.path, 'server-key.pem'), foreign.server.privateKeyPem);
      const pki = ensureDevPki(dir.path, 'localhost');
      expect(pki.created.server).toBe(true);
      expect(new X509Certificate(pki.server.certificatePem).checkIssued(new X509Certificate(pki.ca.certificatePem))).toBe(true);
    } finally {
      other.remove();
    }
  });
});
