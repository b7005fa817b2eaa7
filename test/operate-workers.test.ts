/**
 * `--workers 2` (issue 11): one node runs two processes that share its listeners (node:cluster) and
 * its store. A registration burst over HTTPS is answered by both workers and every device is
 * assigned, on the embedded SQLite store (two processes on one WAL file) and on Redis; twin
 * updates reach a device whichever worker they arrive on (relayed by the primary, or Redis
 * pub/sub); SIGTERM drains both and exits 0.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createSasToken, deriveDeviceKey } from '@opendps/attestation';
import { generateSymmetricKey, parseConnectionString } from '@opendps/model';
import { SharedAccessSignature } from 'azure-iot-common';
import { CLI, connectToHub, deviceSas, httpsRegister, portOf, rawHttps, startGateway, type Gateway } from './support/devices';
import { startRedis, type RedisServer } from './support/redis-server';

const DEVICES = 60;

function serviceSas(connectionString: string): string {
  const fields = parseConnectionString(connectionString);
  return createSasToken({ resource: fields.HostName ?? '', key: fields.SharedAccessKey ?? '', keyName: fields.SharedAccessKeyName ?? '', expiry: Math.floor(Date.now() / 1000) + 3600 });
}

async function untilOutput(node: Gateway, text: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!node.output().includes(text)) {
    if (Date.now() > deadline) throw new Error(`'${text}' never logged:\n${node.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function burst(node: Gateway): Promise<string> {
  const groupKey = generateSymmetricKey();
  const created = await rawHttps({
    port: node.endpoints.httpsPort,
    ca: node.ca,
    method: 'PUT',
    path: '/enrollmentGroups/workers?api-version=2021-10-01',
    headers: { authorization: serviceSas(node.connection.serviceConnectionString), 'content-type': 'application/json' },
    body: JSON.stringify({ enrollmentGroupId: 'workers', attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: groupKey, secondaryKey: groupKey } } }),
  });
  expect(created.status).toBe(200);
  const idScope = node.connection.idScope;
  const results = await Promise.all(
    Array.from({ length: DEVICES }, async (_, index) => {
      const registrationId = `worker-device-${index}`;
      const authorization = deviceSas(idScope, registrationId, deriveDeviceKey(groupKey, registrationId));
      let answer = await httpsRegister(node.endpoints, idScope, registrationId, { authorization });
      for (let polls = 0; answer.status === 202 && polls < 100; polls++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        answer = await rawHttps({
          port: node.endpoints.httpsPort,
          ca: node.ca,
          method: 'GET',
          path: `/${idScope}/registrations/${registrationId}/operations/${String(answer.json?.operationId)}?api-version=2021-06-01`,
          headers: { authorization },
        });
      }
      return answer;
    }),
  );
  for (const answer of results) expect({ status: answer.status, body: answer.json?.status }).toEqual({ status: 200, body: 'assigned' });
  // Both workers assigned devices: each outcome's trace line (debug) carries its worker's pid.
  const pids = new Set(
    node
      .output()
      .split('\n')
      .filter((line) => line.includes('"outcome":"assigned"'))
      .map((line) => (JSON.parse(line) as { pid: number }).pid),
  );
  expect(pids.size).toBe(2);
  // And every one is recorded once in the shared store: the service API counts the group's registrations.
  const listed = await rawHttps({
    port: node.endpoints.httpsPort,
    ca: node.ca,
    method: 'POST',
    path: '/registrations/workers/query?api-version=2021-10-01',
    headers: { authorization: serviceSas(node.connection.serviceConnectionString), 'content-type': 'application/json', 'x-ms-max-item-count': '1000' },
    body: JSON.stringify({ query: '*' }),
  });
  expect(listed.status).toBe(200);
  expect(JSON.parse(listed.text)).toHaveLength(DEVICES);
  return groupKey;
}

/**
 * A device connected to the hub (on one worker) hears of every twin update, though they arrive on
 * fresh connections that the primary hands to the workers in turn (so some to the other worker).
 */
async function twinUpdatesReachTheDevice(node: Gateway, groupKey: string): Promise<void> {
  const hub = node.connection.endpoints.hubs[0] ?? '';
  const deviceId = 'worker-device-0';
  const device = await connectToHub(hub, deviceId, { kind: 'symmetricKey', registrationId: deviceId, key: deriveDeviceKey(groupKey, deviceId) }, node.ca);
  try {
    const twin = await device.client.getTwin();
    const seen = new Set<number>();
    const UPDATES = 6;
    const all = new Promise<void>((resolve) => {
      twin.on('properties.desired', (patch: { round?: number }) => {
        if (typeof patch.round === 'number') seen.add(patch.round);
        if (seen.size === UPDATES) resolve();
      });
    });
    const fields = parseConnectionString(node.connection.instances[0]?.linkedHubs[0]?.connectionString ?? '');
    for (let round = 1; round <= UPDATES; round++) {
      const token = SharedAccessSignature.create(fields.HostName ?? '', fields.SharedAccessKeyName ?? '', fields.SharedAccessKey ?? '', Math.floor(Date.now() / 1000) + 600);
      const patched = await rawHttps({
        port: portOf(hub),
        ca: node.ca,
        method: 'PATCH',
        path: `/twins/${deviceId}?api-version=2021-04-12`,
        headers: { authorization: token.toString(), 'content-type': 'application/json' },
        body: JSON.stringify({ properties: { desired: { round } } }),
      });
      expect(patched.status).toBe(200);
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise<void>((resolve) => (timer = setTimeout(resolve, 15_000)))]);
    clearTimeout(timer);
    expect([...seen].sort()).toEqual([1, 2, 3, 4, 5, 6]);
  } finally {
    await device.close();
  }
}

async function stopsCleanly(node: Gateway): Promise<void> {
  const exited = new Promise<number | null>((resolve) => node.child.once('exit', (code) => resolve(code)));
  node.child.kill('SIGTERM');
  expect(await exited).toBe(0);
  expect(node.output()).toContain('"msg":"workers drained"');
  expect(node.output().match(/"msg":"drained"/g)).toHaveLength(2);
}

describe('--workers 2', () => {
  let redis: RedisServer | undefined;
  afterAll(async () => {
    await redis?.stop();
  });

  it('on the embedded SQLite store: both workers serve one port, every device of a burst is assigned, SIGTERM drains both', async () => {
    // debug: an assignment's outcome line (which carries its worker's pid) is a debug line.
    const node = await startGateway(['--workers', '2'], { OPENDPS_ANSWER_WITHIN_MS: '0', OPENDPS_LOG_LEVEL: 'debug' });
    try {
      await untilOutput(node, 'OpenDPS workers ready: 2');
      await twinUpdatesReachTheDevice(node, await burst(node));
      await stopsCleanly(node);
    } finally {
      await node.stop();
    }
  }, 90_000);

  it('on Redis: the same', async () => {
    redis = await startRedis();
    const node = await startGateway(['--workers', '2', '--redis-url', redis.url], { OPENDPS_ANSWER_WITHIN_MS: '0', OPENDPS_LOG_LEVEL: 'debug' });
    try {
      await untilOutput(node, 'OpenDPS workers ready: 2');
      await twinUpdatesReachTheDevice(node, await burst(node));
      await stopsCleanly(node);
    } finally {
      await node.stop();
    }
  }, 90_000);

  it('workers that cannot start (a port taken) end the node with exit 1 and their reason, instead of being restarted for ever', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const dataDir = mkdtempSync(path.join(tmpdir(), 'opendps-workers-'));
    try {
      const port = String((taken.address() as AddressInfo).port);
      const child = spawn(process.execPath, [CLI, 'start', '--workers', '2', '--data-dir', dataDir, '--https-port', port, '--mqtt-port', '0', '--amqp-port', '0', '--hub-port', '0'], {
        env: { PATH: process.env.PATH },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      // A node that kept restarting its workers would never exit: end it, and the test fails.
      const guard = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)));
      clearTimeout(guard);
      expect(code).toBe(1);
      expect(stderr).toContain('opendps: could not start: a port is already in use');
    } finally {
      taken.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});
