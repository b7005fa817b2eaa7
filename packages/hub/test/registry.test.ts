import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SqliteStore } from '@opendps/store';
import { DeviceRegistry } from '../src/registry';
import type { HubDeviceIdentity } from '../src/connector';

const identity = (deviceId: string, key: string): HubDeviceIdentity => ({
  deviceId,
  status: 'enabled',
  capabilities: { iotEdge: false },
  authentication: { type: 'sas', symmetricKey: { primaryKey: key, secondaryKey: key } },
});
const KEY_1 = Buffer.alloc(32, 1).toString('base64');
const KEY_2 = Buffer.alloc(32, 2).toString('base64');

describe('DeviceRegistry.upsert with the hint that the device is absent', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'opendps-registry-'));
  const store = new SqliteStore(path.join(dir, 'hub.db'));
  const registry = new DeviceRegistry(store, 'hub-a');
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('creates the device when it is indeed absent', async () => {
    const written = await registry.upsert(identity('new-1', KEY_1), { tags: { a: 1 } }, undefined, { absent: true });
    expect(written.previous).toBeUndefined();
    expect(await registry.get('new-1')).toEqual(written.current);
  });

  test('a device created meanwhile is neither overwritten blindly nor an error: it is read and replaced under compare-and-set', async () => {
    const first = await registry.upsert(identity('raced-1', KEY_1), { tags: { kept: true }, reported: { r: 1 } });
    // The caller looked before that create and found nothing: its hint is stale.
    const second = await registry.upsert(identity('raced-1', KEY_2), undefined, undefined, { absent: true });
    expect(second.previous).toEqual(first.current);
    expect(second.current.generationId).toBe(first.current.generationId);
    expect(second.current.twin).toEqual(first.current.twin);
    expect(second.current.identity.authentication).toEqual(identity('raced-1', KEY_2).authentication);
  });
});
