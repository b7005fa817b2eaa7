import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, resolveConfig, settingsFromEnv } from '../src/config';
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
    expect(server.publicKey.asymmetricKeyType).toBe('ec');
    expect(server.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
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

  it('keeps an existing RSA server certificate unless a key type is asked for, then re-issues with that key', () => {
    const rsaDir = tempDir();
    try {
      const first = ensureDevPki(rsaDir.path, 'localhost', 'rsa');
      expect(new X509Certificate(first.server.certificatePem).publicKey.asymmetricKeyType).toBe('rsa');
      // A data dir from before P-256 became the default: nothing asked, the RSA certificate stays.
      const kept = ensureDevPki(rsaDir.path, 'localhost');
      expect(kept.created).toEqual({ ca: false, server: false });
      expect(kept.server.certificatePem).toBe(first.server.certificatePem);
      expect(ensureDevPki(rsaDir.path, 'localhost', 'rsa').created.server).toBe(false);
      const switched = ensureDevPki(rsaDir.path, 'localhost', 'ec');
      expect(switched.created).toEqual({ ca: false, server: true });
      const server = new X509Certificate(switched.server.certificatePem);
      expect(server.publicKey.asymmetricKeyType).toBe('ec');
      expect(server.checkIssued(new X509Certificate(first.ca.certificatePem))).toBe(true);
    } finally {
      rsaDir.remove();
    }
  });

  it('takes the server key type from --server-key-type, OPENDPS_SERVER_KEY_TYPE or serverKeyType, none by default', () => {
    expect(resolveConfig({}, {}, dir.path).serverKeyType).toBeUndefined();
    const configFile = join(dir.path, 'key.json');
    writeFileSync(configFile, JSON.stringify({ serverKeyType: 'rsa' }));
    expect(resolveConfig({ config: configFile }, {}, dir.path).serverKeyType).toBe('rsa');
    expect(resolveConfig({}, settingsFromEnv({ OPENDPS_SERVER_KEY_TYPE: 'rsa' }), dir.path).serverKeyType).toBe('rsa');
    expect(resolveConfig({ 'server-key-type': 'ec' }, settingsFromEnv({ OPENDPS_SERVER_KEY_TYPE: 'rsa' }), dir.path).serverKeyType).toBe('ec');
    expect(() => resolveConfig({ 'server-key-type': 'dsa' }, {}, dir.path)).toThrow(ConfigError);
    expect(() => resolveConfig({ 'server-key-type': 'dsa' }, {}, dir.path)).toThrow('--server-key-type must be rsa or ec; got "dsa".');
    writeFileSync(configFile, JSON.stringify({ serverKeyType: 2048 }));
    expect(() => resolveConfig({ config: configFile }, {}, dir.path)).toThrow(/serverKeyType must be rsa or ec/);
  });
});
