import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { createRootCa, createServerCertificate } from '@opendps/pki';
import { ConnectionLimits } from '@opendps/protocol-base';
import { SqliteStore } from '@opendps/store';
import { BuiltInHub } from '@opendps/hub';

/** The limits the server hands a built-in hub apply at its TCP accept, before TLS. */
describe('a built-in hub given connection limits', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'opendps-hub-limits-'));
  const root = createRootCa({ commonName: 'hub limits test root' });
  const certificate = createServerCertificate(root, ['localhost', '127.0.0.1']);
  const store = new SqliteStore(join(dataDir, 'state.db'));
  const limits = new ConnectionLimits({ maxPerAddress: 1, maxTotal: 5 });
  const hub = new BuiltInHub({
    name: 'hub-limits',
    host: 'localhost',
    port: 0,
    listenAddress: '127.0.0.1',
    tls: { cert: certificate.certificatePem, key: certificate.privateKeyPem },
    store,
    connectionLimits: limits,
  });
  const held: TLSSocket[] = [];

  beforeAll(() => hub.start());
  afterAll(async () => {
    for (const socket of held) socket.destroy();
    await hub.stop();
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const attempt = (): Promise<'open' | 'refused'> =>
    new Promise((resolve) => {
      const socket = tlsConnect({ port: hub.port, host: '127.0.0.1', ca: root.certificatePem, servername: 'localhost' });
      held.push(socket);
      socket.once('secureConnect', () => resolve('open'));
      socket.once('error', () => undefined);
      socket.once('close', () => resolve('refused'));
    });

  test('the next connection from the same address is closed at once, before any handshake', async () => {
    expect(await attempt()).toBe('open');
    expect(await attempt()).toBe('refused');
    expect(limits.open('127.0.0.1')).toBe(1);
  });

  test('once that connection closes, the address gets in again', async () => {
    const first = held[0]!;
    await new Promise<void>((resolve) => {
      first.once('close', () => resolve());
      first.destroy();
    });
    // the hub counts it out when its side closes, a moment after ours
    let outcome = await attempt();
    for (let tries = 0; outcome === 'refused' && tries < 50; tries += 1) {
      await new Promise((resolve) => setImmediate(resolve));
      outcome = await attempt();
    }
    expect(outcome).toBe('open');
    expect(limits.open('127.0.0.1')).toBe(1);
  });
});
