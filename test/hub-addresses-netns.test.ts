/**
 * Hubs addressed as on Azure, on the standard ports (docs/architecture.md "Hub addresses"): OpenDPS
 * listens on 8883, 5671 and 443 with no hub port, in a private network namespace (so nothing else
 * on the machine holds those ports and no other suite races for them) whose mount namespace gives
 * it an /etc/hosts naming `hub-2.localhost`. support/hub-hosts-netns.js runs the gateway (the built
 * CLI: `npx tsc -b` first), links hub-2 with `hub link --host-name`, then the unmodified SDKs with
 * nothing injected: provisioning over MQTT to `localhost`, azure-iot-device Mqtt and MqttWs to the
 * bare `assignedHub`, `Registry.fromConnectionString` of each hub's connection string.
 * Needs root (unshare, mount).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CLI } from './support/devices';

interface Cell {
  desired?: Record<string, unknown>;
  sent?: boolean;
  error?: string;
}

interface NetnsRun {
  error?: string;
  connection: { endpoints: { hubs: string[] }; linkedHubs: Array<{ name: string; hostName: string; connectionHost: string }> };
  linked: { hostName: string; builtin: unknown };
  registrations: Record<string, { assignedHub: string; deviceId: string; status: string }>;
  hubs: Record<string, Cell>;
  registries: Record<string, { hostName: string; devices?: string[]; twin?: Record<string, unknown>; error?: string }>;
}

let run: NetnsRun;

beforeAll(async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'opendps-hosts-'));
  const hosts = path.join(dir, 'hosts');
  writeFileSync(hosts, '127.0.0.1 localhost\n::1 localhost\n127.0.0.1 hub-2.localhost\n');
  const script = [
    'ip link set lo up',
    `mount --bind ${hosts} /etc/hosts`,
    `exec "${process.execPath}" ${path.join(__dirname, 'support', 'hub-hosts-netns.js')} ${CLI}`,
  ].join(' && ');
  try {
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile('unshare', ['-n', '-m', 'sh', '-c', script], { env: { PATH: process.env.PATH }, timeout: 100_000 }, (error, out, err) =>
        error ? reject(new Error(`${error.message}\n${err}`)) : resolve(out),
      ),
    );
    run = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as NetnsRun;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  expect(run.error).toBeUndefined();
}, 120_000);

it('names the hubs bare everywhere: assignedHub, linkedHubs[].hostName, endpoints.hubs and the connection strings', () => {
  expect(run.connection.endpoints.hubs).toEqual(['localhost', 'hub-2.localhost']);
  expect(run.connection.linkedHubs).toEqual([
    { name: 'hub-1', hostName: 'localhost', connectionHost: 'localhost' },
    { name: 'hub-2', hostName: 'hub-2.localhost', connectionHost: 'hub-2.localhost' },
  ]);
  expect(run.linked).toEqual({ hostName: 'hub-2.localhost', builtin: { hostName: 'hub-2.localhost' } });
  expect(run.registrations).toEqual({
    'netns-1': { assignedHub: 'localhost', deviceId: 'netns-1', status: 'assigned' },
    'netns-2': { assignedHub: 'hub-2.localhost', deviceId: 'netns-2', status: 'assigned' },
  });
});

it.each([
  ['netns-1/mqtt', 7],
  ['netns-1/mqttws', 7],
  ['netns-2/mqtt', 8],
  ['netns-2/mqttws', 8],
])('%s: the unmodified device Client reaches its hub by the bare name, reads its initial twin and sends telemetry', (cell, interval) => {
  expect(run.hubs[cell]).toEqual({ desired: { interval, $version: 1 }, sent: true });
});

it.each(['hub-1', 'hub-2'])('%s: Registry.fromConnectionString creates, lists and reads twins with the connection string as written', (hub) => {
  const device = hub === 'hub-1' ? 'netns-1' : 'netns-2';
  const registry = run.registries[hub];
  expect(registry?.error).toBeUndefined();
  expect(registry?.devices).toEqual([`made-on-${hub}`, device]);
  expect(registry?.twin).toMatchObject({ interval: hub === 'hub-1' ? 7 : 8 });
});
