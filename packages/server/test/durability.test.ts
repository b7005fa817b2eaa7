import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConnectionString } from '@opendps/model';
import { startRedis, type RedisServer } from '../../../test/support/redis-server';
import { callServiceApi } from '../src/cli/service-client';
import type { ConnectionInfo } from '../src/connection-file';
import type { ServiceTarget } from '../src/cli/target';
import { startCliServer, tempDir } from './support';

/**
 * Nothing acknowledged is lost (docs/architecture.md, Principles): enrollments written through the
 * service API to a spawned `opendps start`, the process killed with SIGKILL right after the last
 * acknowledgement, a restart on the same data dir (and the same Redis): every write is there.
 */

function targetOf(connection: ConnectionInfo): ServiceTarget {
  const fields = parseConnectionString(connection.serviceConnectionString);
  const [host = '', port = ''] = connection.endpoints.https.split(':');
  return {
    hostName: fields.HostName ?? '',
    keyName: fields.SharedAccessKeyName ?? '',
    key: fields.SharedAccessKey ?? '',
    host,
    port: Number(port),
    ca: readFileSync(connection.caFile, 'utf8'),
  };
}

async function listAll(target: ServiceTarget, resource: 'enrollments' | 'enrollmentGroups'): Promise<Array<Record<string, unknown>>> {
  const items: Array<Record<string, unknown>> = [];
  let continuation: string | undefined;
  do {
    const page = await callServiceApi(target, 'POST', `/${resource}/query`, {
      body: { query: '*' },
      headers: { 'x-ms-max-item-count': '25', ...(continuation ? { 'x-ms-continuation': continuation } : {}) },
    });
    items.push(...(page.body as Array<Record<string, unknown>>));
    const next = page.headers['x-ms-continuation'];
    continuation = typeof next === 'string' ? next : undefined;
  } while (continuation);
  return items;
}

const byId = (items: Array<Record<string, unknown>>, key: string) =>
  Object.fromEntries(items.map((item) => [String(item[key]), item.etag]));

async function survivesSigkill(dataDir: string, args: string[], store: 'sqlite' | 'redis'): Promise<void> {
  const first = await startCliServer(dataDir, args);
  expect(first.stdout()).toContain(`"store":"${store}"`);
  let target = targetOf(first.connection);
  const acknowledged: Record<string, unknown> = {};
  try {
    // Concurrent writers, as operators and the SDK produce them.
    await Promise.all(
      Array.from({ length: 4 }, async (_, writer) => {
        for (let index = 0; index < 15; index += 1) {
          const registrationId = `dev-${writer}-${index}`;
          const response = await callServiceApi(target, 'PUT', `/enrollments/${registrationId}`, {
            body: { registrationId, attestation: { type: 'symmetricKey' }, initialTwin: { tags: { writer } } },
          });
          acknowledged[registrationId] = (response.body as { etag: unknown }).etag;
        }
      }),
    );
    const group = await callServiceApi(target, 'PUT', '/enrollmentGroups/group-1', {
      body: { enrollmentGroupId: 'group-1', attestation: { type: 'symmetricKey' } },
    });
    // An update and a delete acknowledged just before the crash.
    const updated = await callServiceApi(target, 'PUT', '/enrollments/dev-0-0', {
      body: { registrationId: 'dev-0-0', attestation: { type: 'symmetricKey' }, provisioningStatus: 'disabled' },
    });
    acknowledged['dev-0-0'] = (updated.body as { etag: unknown }).etag;
    await callServiceApi(target, 'DELETE', '/enrollments/dev-3-14');
    delete acknowledged['dev-3-14'];

    await first.kill();
    expect(first.child.signalCode).toBe('SIGKILL');

    const second = await startCliServer(dataDir, args);
    try {
      expect(second.connection.idScope).toBe(first.connection.idScope);
      expect(second.connection.serviceConnectionString).toBe(first.connection.serviceConnectionString);
      target = targetOf(second.connection);
      expect(byId(await listAll(target, 'enrollments'), 'registrationId')).toEqual(acknowledged);
      expect(byId(await listAll(target, 'enrollmentGroups'), 'enrollmentGroupId')).toEqual({ 'group-1': (group.body as { etag: unknown }).etag });
      const reread = await callServiceApi(target, 'GET', '/enrollments/dev-0-0');
      expect(reread.body).toMatchObject({ provisioningStatus: 'disabled' });
      expect(await second.stop()).toBe(0);
    } finally {
      if (second.child.exitCode === null) await second.kill();
    }
  } finally {
    if (first.child.exitCode === null && first.child.signalCode === null) await first.kill();
  }
}

describe('durability across SIGKILL', () => {
  it('keeps every acknowledged write in the embedded store', async () => {
    const dir = tempDir();
    try {
      await survivesSigkill(join(dir.path, 'data'), [], 'sqlite');
    } finally {
      dir.remove();
    }
  }, 60_000);

  describe('with Redis', () => {
    let redis: RedisServer;
    beforeAll(async () => {
      redis = await startRedis();
    });
    afterAll(() => redis?.stop());

    it('keeps every acknowledged write in Redis', async () => {
      const dir = tempDir();
      try {
        await survivesSigkill(join(dir.path, 'data'), ['--redis-url', redis.url], 'redis');
      } finally {
        dir.remove();
      }
    }, 60_000);
  });
});
