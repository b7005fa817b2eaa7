import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRootCa, createServerCertificate } from '@opendps/pki';
import { SqliteStore } from '@opendps/store';
import { ensureDevPki, ensureSharedDevPki } from '../src/pki/dev-pki';
import { storeSharedPki } from '../src/pki/shared-pki';
import { tempDir } from './support';

describe('development PKI and certificates it did not make', () => {
  const dirs: Array<{ path: string; remove(): void }> = [];
  const dir = (): string => {
    const made = tempDir();
    dirs.push(made);
    return made.path;
  };
  afterAll(() => dirs.forEach((made) => made.remove()));

  // An operator's certificate: another CA, with no name that the development CA uses.
  const operatorCa = createRootCa({ commonName: 'Example Corp Root', organization: 'Example Corp' });
  const operatorServer = createServerCertificate(operatorCa, ['dps.example.com']);

  it('keeps and serves a valid server.pem that the development CA did not issue, even for other host names', () => {
    const data = dir();
    ensureDevPki(data, 'localhost');
    writeFileSync(join(data, 'server.pem'), operatorServer.certificatePem);
    writeFileSync(join(data, 'server-key.pem'), operatorServer.privateKeyPem);
    const pki = ensureDevPki(data, 'localhost');
    expect(pki.foreignServer).toBe(true);
    expect(pki.created.server).toBe(false);
    expect(pki.server.certificatePem).toBe(operatorServer.certificatePem);
    expect(readFileSync(join(data, 'server.pem'), 'utf8')).toBe(operatorServer.certificatePem);
  });

  it('refuses, with the reason and the way out, a foreign server.pem whose key does not match', () => {
    const data = dir();
    ensureDevPki(data, 'localhost');
    writeFileSync(join(data, 'server.pem'), operatorServer.certificatePem);
    writeFileSync(join(data, 'server-key.pem'), operatorCa.privateKeyPem);
    expect(() => ensureDevPki(data, 'localhost')).toThrow(
      /server\.pem was not issued by the OpenDPS development CA and cannot be used \(the key does not match the certificate\); fix it, remove it .*--tls-cert and --tls-key/,
    );
    // Nothing was replaced.
    expect(readFileSync(join(data, 'server.pem'), 'utf8')).toBe(operatorServer.certificatePem);
  });

  it('nodes on one store share one CA: the first stores its own, a second adopts it in its data directory', async () => {
    const shared = dir();
    const store = new SqliteStore(join(shared, 'opendps.db'));
    try {
      const [a, b] = [dir(), dir()];
      // B had a CA of its own from an earlier life: the shared one replaces it.
      const before = ensureDevPki(b, 'localhost');
      const first = await ensureSharedDevPki(a, 'localhost', storeSharedPki(store));
      const second = await ensureSharedDevPki(b, 'localhost', storeSharedPki(store));
      expect(second.ca.certificatePem).toBe(first.ca.certificatePem);
      expect(second.ca.certificatePem).not.toBe(before.ca.certificatePem);
      expect(readFileSync(join(b, 'ca.pem'), 'utf8')).toBe(first.ca.certificatePem);
      expect(second.server.certificatePem).toBe(first.server.certificatePem);
      expect(readFileSync(join(b, 'server.pem'), 'utf8')).toBe(first.server.certificatePem);
      // A node with another host name gets its own server certificate, from the shared CA.
      const third = await ensureSharedDevPki(dir(), 'node-c.example', storeSharedPki(store));
      const server = new X509Certificate(third.server.certificatePem);
      expect(server.checkHost('node-c.example')).toBe('node-c.example');
      expect(server.checkIssued(new X509Certificate(first.ca.certificatePem))).toBe(true);
    } finally {
      await store.close();
    }
  });

  it('two nodes starting at once agree on one CA (create-if-absent)', async () => {
    const store = new SqliteStore(join(dir(), 'opendps.db'));
    try {
      const both = await Promise.all([dir(), dir()].map((data) => ensureSharedDevPki(data, 'localhost', storeSharedPki(store))));
      expect(both[0]?.ca.certificatePem).toBe(both[1]?.ca.certificatePem);
    } finally {
      await store.close();
    }
  });
});
