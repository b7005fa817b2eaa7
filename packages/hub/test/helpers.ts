import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRootCa, createServerCertificate, type Issued } from '@opendps/pki';
import { SqliteStore } from '@opendps/store';
import { generateSymmetricKey } from '@opendps/model';
import { createSasToken } from '@opendps/attestation';
import { BuiltInHub, type BuiltInHubOptions } from '@opendps/hub';

export interface HubFixture {
  hub: BuiltInHub;
  store: SqliteStore;
  dataDir: string;
  root: Issued;
  server: Issued;
  /** Starts a second hub object on the same store file (a restart). */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export const HUB_NAME = 'hub-test';

export async function startHub(options: Partial<BuiltInHubOptions> = {}): Promise<HubFixture> {
  const dataDir = mkdtempSync(join(tmpdir(), 'opendps-hub-'));
  const root = createRootCa({ commonName: 'OpenDPS hub test root' });
  const server = createServerCertificate(root, ['localhost', '127.0.0.1']);
  const open = async (): Promise<{ hub: BuiltInHub; store: SqliteStore }> => {
    const store = new SqliteStore(join(dataDir, 'state.db'));
    const hub = new BuiltInHub({
      name: HUB_NAME,
      host: 'localhost',
      port: 0,
      listenAddress: '127.0.0.1',
      tls: { cert: server.certificatePem, key: server.privateKeyPem },
      store,
      ...options,
    });
    await hub.start();
    return { hub, store };
  };
  const fixture: HubFixture = {
    ...(await open()),
    dataDir,
    root,
    server,
    async restart() {
      await fixture.hub.stop();
      await fixture.store.close();
      Object.assign(fixture, await open());
    },
    async close() {
      await fixture.hub.stop();
      await fixture.store.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return fixture;
}

export async function addSasDevice(
  hub: BuiltInHub,
  deviceId: string,
  options: { status?: 'enabled' | 'disabled'; desired?: Record<string, unknown>; tags?: Record<string, unknown> } = {},
): Promise<{ primaryKey: string; secondaryKey: string }> {
  const symmetricKey = { primaryKey: generateSymmetricKey(), secondaryKey: generateSymmetricKey() };
  await hub.upsertDevice(
    { deviceId, authentication: { type: 'sas', symmetricKey }, status: options.status ?? 'enabled', capabilities: { iotEdge: false } },
    { ...(options.desired ? { desired: options.desired } : {}), ...(options.tags ? { tags: options.tags } : {}) },
  );
  return symmetricKey;
}

/** The hub SAS the device SDK sends (docs/device-wire.md §1: encoded sr keeping `:port`, no skn). */
export function deviceToken(hub: BuiltInHub, deviceId: string, key: string, expiry = Math.floor(Date.now() / 1000) + 3600): string {
  return createSasToken({ resource: `${hub.hostName}/devices/${deviceId}`, key, expiry, encodeResource: true });
}

export function deviceUsername(hub: BuiltInHub, deviceId: string): string {
  return `${hub.hostName}/${deviceId}/?api-version=2021-04-12`;
}

/** Polls until `check` is true or the timeout passes. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
