import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateSymmetricKey, parseConnectionString } from '@opendps/model';
import type { ConnectionInfo } from '../src';
import { callServiceApi } from '../src/cli/service-client';
import { portOf, registerOverHttps, tlsAccepts } from './admin-support';
import { runCli, startCliServer, tempDir, type CliServer } from './support';

/**
 * `opendps instance …` and `opendps hub …` end to end: the built CLI against a spawned
 * `opendps start` (run `npx tsc -b packages/server` first), found through `--data-dir`.
 */
describe('opendps instance and hub commands', () => {
  const dir = tempDir();
  const empty = tempDir();
  let server: CliServer;
  let ca: string;
  beforeAll(async () => {
    server = await startCliServer(dir.path, [], { OPENDPS_ANSWER_WITHIN_MS: '5000' });
    ca = readFileSync(server.connection.caFile, 'utf8');
  }, 30_000);
  afterAll(async () => {
    await server?.stop();
    dir.remove();
    empty.remove();
  });

  const cli = (...args: string[]) => runCli([...args, '--data-dir', dir.path]);
  const connection = (): ConnectionInfo => JSON.parse(readFileSync(join(dir.path, 'connection.json'), 'utf8')) as ConnectionInfo;
  const httpsPort = (): number => portOf(server.connection.endpoints.https);

  it('explains itself', async () => {
    const main = await runCli(['--help']);
    expect(main.stdout).toMatch(/instance\s+Add, list and remove provisioning instances/);
    expect(main.stdout).toMatch(/hub\s+Link, unlink and list the IoT hubs/);
    const link = await runCli(['hub', 'link', '--help']);
    expect(link.code).toBe(0);
    for (const flag of ['--builtin', '--connection-string CS', '--weight N', '--location L', '--no-apply-allocation-policy', '--instance NAME', '--data-dir PATH']) {
      expect(link.stdout).toContain(flag);
    }
  });

  it('links a built-in hub that listens when the command returns, lists it, and unlinks it', async () => {
    const linked = await cli('hub', 'link', 'hub-2', '--builtin', '--weight', '2', '--location', 'westeurope');
    expect(linked.stderr).toBe('');
    expect(linked.code).toBe(0);
    const hub = JSON.parse(linked.stdout) as { name: string; hostName: string; allocationWeight: number; location: string; listening: boolean };
    expect(hub).toMatchObject({ name: 'hub-2', allocationWeight: 2, location: 'westeurope', listening: true });
    expect(await tlsAccepts(portOf(hub.hostName), ca)).toBe(true);
    expect(connection().endpoints.hubs).toContain(hub.hostName);
    expect(connection().instances[0]?.linkedHubs.map((entry) => entry.name)).toEqual(['hub-1', 'hub-2']);

    const listed = await cli('hub', 'list');
    expect(listed.code).toBe(0);
    expect((JSON.parse(listed.stdout) as Array<{ name: string; hostName: string }>).map((entry) => [entry.name, entry.hostName])).toEqual([
      ['hub-1', connection().instances[0]?.linkedHubs[0]?.hostName],
      ['hub-2', hub.hostName],
    ]);

    const unlinked = await cli('hub', 'unlink', 'hub-2');
    expect(unlinked.code).toBe(0);
    expect(await tlsAccepts(portOf(hub.hostName), ca)).toBe(false);
    expect(connection().endpoints.hubs).not.toContain(hub.hostName);
  });

  it('adds an instance, links a hub to it, provisions a device there, and removes it', async () => {
    const added = await cli('instance', 'add', 'second', '--registrations-per-second', '50');
    expect(added.code).toBe(0);
    const second = JSON.parse(added.stdout) as { idScope: string; serviceConnectionString: string; quotas: { registrationsPerSecond: number } };
    expect(second.idScope).not.toBe(server.connection.idScope);
    expect(second.quotas.registrationsPerSecond).toBe(50);
    expect(connection().instances.map((instance) => instance.name)).toEqual(['default', 'second']);
    const listed = JSON.parse((await cli('instance', 'list')).stdout) as Array<{ name: string }>;
    expect(listed.map((instance) => instance.name)).toEqual(['default', 'second']);

    const linked = await cli('hub', 'link', 'edge-hub', '--builtin', '--no-apply-allocation-policy', '--instance', 'second');
    expect(linked.code).toBe(0);
    const hub = JSON.parse(linked.stdout) as { hostName: string; applyAllocationPolicy: boolean };
    expect(hub.applyAllocationPolicy).toBe(false);
    expect(connection().instances[1]?.linkedHubs.map((entry) => entry.name)).toEqual(['edge-hub']);
    expect(connection().instances[0]?.linkedHubs.map((entry) => entry.name)).toEqual(['hub-1']);

    // A device of the new instance, enrolled with its own key, lands on the hub the CLI linked.
    const fields = parseConnectionString(second.serviceConnectionString);
    const target = { hostName: fields.HostName ?? '', keyName: fields.SharedAccessKeyName ?? '', key: fields.SharedAccessKey ?? '', host: 'localhost', port: httpsPort(), ca };
    const key = generateSymmetricKey();
    await callServiceApi(target, 'PUT', '/enrollments/cli-device', {
      body: { registrationId: 'cli-device', attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: key } }, iotHubs: [hub.hostName] },
    });
    const registered = await registerOverHttps(httpsPort(), ca, second.idScope, 'cli-device', key);
    expect(registered.body).toMatchObject({ status: 'assigned', registrationState: { assignedHub: hub.hostName } });

    expect((await cli('hub', 'unlink', 'edge-hub', '--instance', 'second')).code).toBe(0);
    const removed = await cli('instance', 'remove', 'second');
    expect(removed.code).toBe(0);
    expect(connection().instances.map((instance) => instance.name)).toEqual(['default']);
  });

  it('refuses bad command lines (exit 2) and failed operations (exit 1) with a message', async () => {
    const neither = await cli('hub', 'link', 'hub-x');
    expect(neither.code).toBe(2);
    expect(neither.stderr).toContain('exactly one of --builtin and --connection-string');
    expect((await cli('hub', 'link', 'hub-x', '--builtin', '--weight', '0')).code).toBe(2);
    expect((await cli('hub', 'link', 'hub-x', '--builtin', '--weight', '1001')).code).toBe(2);

    const unreachable = await cli('hub', 'link', 'hub-x', '--connection-string', `HostName=localhost:1;SharedAccessKeyName=iothubowner;SharedAccessKey=${generateSymmetricKey()}`);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain('errorCode 503001');
    const unknown = await cli('hub', 'unlink', 'never-linked');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('errorCode 404207');
    const last = await cli('instance', 'remove', 'default');
    expect(last.code).toBe(1);
    expect(last.stderr).toContain('errorCode 409001');
    const noInstance = await cli('hub', 'list', '--instance', 'nobody');
    expect(noInstance.code).toBe(1);
    expect(noInstance.stderr).toContain('errorCode 404208');

    const noServer = await runCli(['hub', 'list', '--data-dir', empty.path]);
    expect(noServer.code).toBe(2);
    expect(noServer.stderr).toContain('No admin connection string');
  });
});
