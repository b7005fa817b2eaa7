import { existsSync, readFileSync, statSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { parseConnectionString, silentLogger, type ProvisioningInstance } from '@opendps/model';
import { openStore } from '@opendps/store';
import { createServer, createLogger, instanceCollection, type RunningServer } from '../src';
import { callServiceApi } from '../src/cli/service-client';
import { lineSink, tempDir } from './support';

function targetOf(server: RunningServer, instanceIndex = 0) {
  const instance = server.connection.instances[instanceIndex];
  const fields = parseConnectionString(instance?.serviceConnectionString ?? '');
  return {
    hostName: fields.HostName ?? '',
    keyName: fields.SharedAccessKeyName ?? '',
    key: fields.SharedAccessKey ?? '',
    host: 'localhost',
    port: Number(server.endpoints.https.split(':')[1]),
    ca: readFileSync(server.caFile, 'utf8'),
  };
}

function get(server: RunningServer, path: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: 'localhost', port: Number(server.endpoints.https.split(':')[1]), path, ca: readFileSync(server.caFile) },
      (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('createServer', () => {
  const dir = tempDir();
  afterAll(() => dir.remove());

  it('starts on a free port, writes connection.json and logs ready without keys', async () => {
    const log = lineSink();
    const server = await createServer({ dataDir: dir.path, ports: { https: 0, mqtt: 0, amqp: 0, hub: 0 }, logger: createLogger({ destination: log.stream }) });
    try {
      const port = Number(server.endpoints.https.split(':')[1]);
      expect(port).toBeGreaterThan(0);
      expect(port).not.toBe(8443);
      const written = JSON.parse(readFileSync(join(dir.path, 'connection.json'), 'utf8'));
      expect(written).toEqual(server.connection);
      expect(statSync(join(dir.path, 'connection.json')).mode & 0o777).toBe(0o600);
      expect(written.endpoints).toEqual({
        mqtt: expect.stringMatching(/^localhost:\d+$/),
        amqp: expect.stringMatching(/^localhost:\d+$/),
        https: `localhost:${port}`,
        hubs: [expect.stringMatching(/^localhost:\d+$/)],
        websocket: `wss://localhost:${port}/$iothub/websocket`,
        browser: { https: `browser.localhost:${port}`, websocket: `wss://browser.localhost:${port}/$iothub/websocket` },
        console: `https://browser.localhost:${port}/console/`,
      });
      // The default instance links the default built-in hub, at the address it really listens on.
      expect(written.instances[0]?.linkedHubs).toEqual([expect.objectContaining({ name: 'hub-1', hostName: written.endpoints.hubs[0] })]);
      expect(written.caFile).toBe(join(dir.path, 'ca.pem'));
      expect(written.idScope).toMatch(/^0ne[0-9A-F]{8}$/);
      const fields = parseConnectionString(written.serviceConnectionString);
      expect(fields).toEqual({
        HostName: 'localhost',
        SharedAccessKeyName: 'provisioningserviceowner',
        SharedAccessKey: expect.stringMatching(/^[A-Za-z0-9+/]+=*$/),
      });
      expect(written.instances).toEqual([
        {
          name: 'default',
          idScope: written.idScope,
          serviceConnectionString: written.serviceConnectionString,
          linkedHubs: [
            {
              name: 'hub-1',
              hostName: written.endpoints.hubs[0],
              connectionString: expect.stringMatching(
                new RegExp(`^HostName=${written.endpoints.hubs[0]};SharedAccessKeyName=iothubowner;SharedAccessKey=[A-Za-z0-9+/]+=*$`),
              ),
              allocationWeight: 1,
            },
          ],
        },
      ]);

      const ready = log.lines.map((line) => JSON.parse(line)).find((line) => /ready/.test(line.msg));
      expect(ready).toMatchObject({ category: 'ServiceOperations', endpoints: written.endpoints });
      const key = fields.SharedAccessKey ?? 'missing';
      expect(log.lines.join('\n')).not.toContain(key);
      expect(log.lines.join('\n')).not.toContain('PRIVATE KEY');
    } finally {
      await server.stop();
    }
  });

  it('keeps the ID scope and keys across restarts', async () => {
    const first = JSON.parse(readFileSync(join(dir.path, 'connection.json'), 'utf8'));
    const server = await createServer({ dataDir: dir.path, ports: { https: 0, mqtt: 0, amqp: 0, hub: 0 }, logger: silentLogger });
    try {
      expect(server.connection.idScope).toBe(first.idScope);
      expect(server.connection.serviceConnectionString).toBe(first.serviceConnectionString);
      expect(server.instances()).toHaveLength(1);
    } finally {
      await server.stop();
    }
  });

  it('serves the service API with the owner key and answers anything else with a DPS 404', async () => {
    const server = await createServer({ dataDir: dir.path, ports: { https: 0, mqtt: 0, amqp: 0, hub: 0 }, logger: silentLogger });
    try {
      const target = targetOf(server);
      const put = await callServiceApi(target, 'PUT', '/enrollments/dev-1', {
        body: { registrationId: 'dev-1', attestation: { type: 'symmetricKey' } },
      });
      expect(put.status).toBe(200);
      expect(put.body).toMatchObject({ registrationId: 'dev-1', attestation: { type: 'symmetricKey' } });
      const got = await callServiceApi(target, 'GET', '/enrollments/dev-1');
      expect(got.body).toMatchObject({ registrationId: 'dev-1' });

      const wrongKey = { ...target, key: Buffer.alloc(32, 1).toString('base64') };
      await expect(callServiceApi(wrongKey, 'GET', '/enrollments/dev-1')).rejects.toMatchObject({ status: 401 });

      const missing = await get(server, '/no/such/thing?api-version=2021-10-01');
      expect(missing.status).toBe(404);
      expect(missing.headers['content-type']).toMatch(/^application\/json/);
      const body = JSON.parse(missing.body);
      expect(body).toMatchObject({ errorCode: 404001, message: expect.stringContaining('/no/such/thing') });
      expect(missing.headers['x-ms-error-code']).toBe('404001');
      expect(missing.headers['x-ms-request-id']).toBe(body.trackingId);
    } finally {
      await server.stop();
    }
  });

  it('creates the instances a configuration declares, once, and applies later declarations', async () => {
    const own = tempDir();
    try {
      const declared = [
        { name: 'alpha', idScope: '0ne00000A11', linkedHubs: [{ name: 'hub-x', connectionString: 'HostName=x.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=a2V5' }] },
        { name: 'beta', allocationPolicy: 'static' as const },
      ];
      const first = await createServer({ dataDir: own.path, ports: { https: 0, mqtt: 0, amqp: 0, hub: 0 }, instances: declared, logger: silentLogger });
      const betaScope = first.connection.instances[1]?.idScope;
      await first.stop();
      expect(first.connection.idScope).toBe('0ne00000A11');
      expect(first.connection.instances.map((instance) => instance.name)).toEqual(['alpha', 'beta']);
      expect(first.connection.instances[0]?.linkedHubs).toEqual([
        { name: 'hub-x', hostName: 'x.azure-devices.net', connectionString: 'HostName=x.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=a2V5', allocationWeight: 1 },
      ]);
      // Two instances, distinct owner keys (one instance's key never opens another's data).
      expect(first.connection.instances[0]?.serviceConnectionString).not.toBe(first.connection.instances[1]?.serviceConnectionString);

      // A restart without declarations serves what is stored; no extra `default` appears.
      const second = await createServer({ dataDir: own.path, ports: { https: 0, mqtt: 0, amqp: 0, hub: 0 }, logger: silentLogger, host: '127.0.0.1' });
      try {
        expect(second.instances().map((instance) => instance.name).sort()).toEqual(['alpha', 'beta']);
        expect(second.instances().find((instance) => instance.name === 'beta')?.idScope).toBe(betaScope);
        expect(second.instances().every((instance) => instance.serviceHostName === '127.0.0.1')).toBe(true);
      } finally {
        await second.stop();
      }

      const store = await openStore({ dataDir: own.path });
      try {
        const stored = (await instanceCollection(store).get('beta'))?.value as ProvisioningInstance;
        expect(stored.allocationPolicy).toBe('static');
        expect(stored.policies[0]?.rights).toEqual(['ServiceConfig', 'EnrollmentRead', 'EnrollmentWrite', 'RegistrationStatusRead', 'RegistrationStatusWrite']);
      } finally {
        await store.close();
      }
    } finally {
      own.remove();
    }
  });

  it('refuses invalid programmatic options with the config-file checks', async () => {
    await expect(createServer({ dataDir: dir.path, ports: { https: 70000 }, logger: silentLogger })).rejects.toThrow(/ports\.https must be a port number/);
  });

  it('fails to start, and leaves nothing open, when the port is taken', async () => {
    const holder = await createServer({ dataDir: dir.path, ports: { https: 0, mqtt: 0, amqp: 0, hub: 0 }, logger: silentLogger });
    try {
      const port = Number(holder.endpoints.https.split(':')[1]);
      const other = tempDir();
      try {
        await expect(createServer({ dataDir: other.path, ports: { https: port, mqtt: 0, amqp: 0, hub: 0 }, logger: silentLogger })).rejects.toMatchObject({ code: 'EADDRINUSE' });
        // Never ready: no connection.json that would point clients at someone else's listener.
        expect(existsSync(join(other.path, 'connection.json'))).toBe(false);
      } finally {
        other.remove();
      }
    } finally {
      await holder.stop();
    }
  });
});
