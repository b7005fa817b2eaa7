/**
 * Nodes that agree, and a graceful drain (issue 11): two `opendps start` processes on one Redis
 * share one development CA, so a device trusting it registers on node A and reaches the hub on
 * either node; a twin update made through node A's hub reaches the device connected to node B's;
 * node A SIGTERMed in the middle of a registration burst loses no device (each gets its answer
 * from A, or polls / registers again on B) and exits 0 within its drain bound.
 */
import { createSasToken, deriveDeviceKey } from '@opendps/attestation';
import { generateSymmetricKey, parseConnectionString } from '@opendps/model';
import { SharedAccessSignature } from 'azure-iot-common';
import { connectToHub, deviceSas, httpsRegister, portOf, rawHttps, registerWithSdk, startGateway, type Gateway, type HubDevice } from './support/devices';
import { startRedis, type RedisServer } from './support/redis-server';

const DRAIN_TIMEOUT_MS = 5_000;
// Every registration answers 202 and is polled, so a burst always has operations in flight.
const ENV = { OPENDPS_ANSWER_WITHIN_MS: '0', OPENDPS_LOG_LEVEL: 'info' };

function serviceSas(connectionString: string): string {
  const fields = parseConnectionString(connectionString);
  return createSasToken({ resource: fields.HostName ?? '', key: fields.SharedAccessKey ?? '', keyName: fields.SharedAccessKeyName ?? '', expiry: Math.floor(Date.now() / 1000) + 3600 });
}

async function serviceCall(node: Gateway, method: string, path: string, body: unknown): Promise<number> {
  const answer = await rawHttps({
    port: node.endpoints.httpsPort,
    ca: node.ca,
    method,
    path: `${path}?api-version=2021-10-01`,
    headers: { authorization: serviceSas(node.connection.serviceConnectionString), 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return answer.status;
}

describe('nodes on one Redis', () => {
  let redis: RedisServer;
  let a: Gateway;
  let b: Gateway;
  let device: HubDevice | undefined;
  beforeAll(async () => {
    redis = await startRedis();
    // A first: it makes the CA; B adopts it.
    a = await startGateway(['--redis-url', redis.url, '--drain-timeout-ms', String(DRAIN_TIMEOUT_MS)], ENV);
    b = await startGateway(['--redis-url', redis.url], ENV);
  }, 60_000);
  afterAll(async () => {
    await device?.close().catch(() => undefined);
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.stop();
  });

  it('share one CA: a device trusting it registers on A and reaches the hub on B and on A; a twin update through A reaches it on B', async () => {
    expect(b.ca).toBe(a.ca);
    const key = generateSymmetricKey();
    expect(
      await serviceCall(a, 'PUT', '/enrollments/shared-ca-device', {
        registrationId: 'shared-ca-device',
        attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: key } },
      }),
    ).toBe(200);
    const credential = { kind: 'symmetricKey' as const, registrationId: 'shared-ca-device', key };
    // The device trusts only the CA file it was given: node A's.
    const registered = await registerWithSdk('mqtt', { ...a.endpoints, ca: a.ca }, a.connection.idScope, credential);
    expect(registered.deviceId).toBe('shared-ca-device');

    const hubOnA = a.connection.endpoints.hubs[0] ?? '';
    const hubOnB = b.connection.endpoints.hubs[0] ?? '';
    expect(hubOnB).not.toBe(hubOnA);
    const onA = await connectToHub(hubOnA, registered.deviceId, credential, a.ca);
    await onA.close();
    device = await connectToHub(hubOnB, registered.deviceId, credential, a.ca);

    const twin = await device.client.getTwin();
    const notified = new Promise<Record<string, unknown>>((resolve) => {
      twin.on('properties.desired', (patch: Record<string, unknown>) => {
        if (patch.interval === 42) resolve(patch);
      });
    });
    // The service updates the twin through node A's hub (its iothubowner connection string).
    const hubString = a.connection.instances[0]?.linkedHubs[0]?.connectionString ?? '';
    const fields = parseConnectionString(hubString);
    const token = SharedAccessSignature.create(fields.HostName ?? '', fields.SharedAccessKeyName ?? '', fields.SharedAccessKey ?? '', Math.floor(Date.now() / 1000) + 600);
    const patched = await rawHttps({
      port: portOf(hubOnA),
      ca: a.ca,
      method: 'PATCH',
      path: `/twins/${registered.deviceId}?api-version=2021-04-12`,
      headers: { authorization: token.toString(), 'content-type': 'application/json' },
      body: JSON.stringify({ properties: { desired: { interval: 42 } } }),
    });
    expect(patched.status).toBe(200);
    expect(await notified).toMatchObject({ interval: 42 });
  }, 60_000);

  it('hub list on each node shows the address of the hub that node serves', async () => {
    for (const node of [a, b]) {
      const answer = await rawHttps({
        port: node.endpoints.httpsPort,
        ca: node.ca,
        method: 'GET',
        path: '/admin/instances/default/hubs',
        headers: { authorization: serviceSas((node.connection as typeof node.connection & { adminConnectionString: string }).adminConnectionString) },
      });
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.text)).toEqual([expect.objectContaining({ hostName: node.connection.endpoints.hubs[0] })]);
    }
  });

  it('a drain under load loses no registration: node A SIGTERMed mid-burst, every device assigned, A exits 0 within its bound', async () => {
    const groupKey = generateSymmetricKey();
    expect(
      await serviceCall(a, 'PUT', '/enrollmentGroups/drain-burst', {
        enrollmentGroupId: 'drain-burst',
        attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: groupKey, secondaryKey: groupKey } },
      }),
    ).toBe(200);
    const idScope = a.connection.idScope;
    const nodes = [a, b];
    const DEVICES = 40;
    let accepted = 0;
    let signalled: (() => void) | undefined;
    const midBurst = new Promise<void>((resolve) => (signalled = resolve));
    const failovers = { count: 0 };

    /** A device: registers on A, polls its operation; on a refused or reset connection it goes on with B. */
    const provision = async (registrationId: string): Promise<Record<string, unknown>> => {
      const key = deriveDeviceKey(groupKey, registrationId);
      const authorization = deviceSas(idScope, registrationId, key);
      let node = 0;
      let operationId: string | undefined;
      for (let attempt = 0; attempt < 200; attempt++) {
        const target = nodes[node] as Gateway;
        try {
          const answer = operationId
            ? await rawHttps({
                port: target.endpoints.httpsPort,
                ca: target.ca,
                method: 'GET',
                path: `/${idScope}/registrations/${registrationId}/operations/${operationId}?api-version=2021-06-01`,
                headers: { authorization },
              })
            : await httpsRegister(target.endpoints, idScope, registrationId, { authorization });
          if (answer.status === 200 && answer.json?.status === 'assigned') return answer.json;
          if (answer.status !== 202) throw new Error(`unexpected answer ${answer.status}: ${answer.text}`);
          if (!operationId && ++accepted === DEVICES / 4) signalled?.();
          operationId = String(answer.json?.operationId);
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (code !== 'ECONNREFUSED' && code !== 'ECONNRESET' && code !== 'EPIPE') throw error;
          if (node === 0) failovers.count++;
          node = 1;
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new Error(`${registrationId} was never assigned`);
    };

    const burst = Promise.all(Array.from({ length: DEVICES }, (_, index) => provision(`drain-${index}`)));
    await midBurst;
    const exited = new Promise<number | null>((resolve) => a.child.once('exit', (code) => resolve(code)));
    const signalledAt = performance.now();
    a.child.kill('SIGTERM');
    const results = await burst;
    const code = await exited;
    const drainMs = performance.now() - signalledAt;

    expect(results).toHaveLength(DEVICES);
    for (const result of results) expect(result).toMatchObject({ status: 'assigned', registrationState: { status: 'assigned' } });
    expect(failovers.count).toBeGreaterThan(0);
    expect(code).toBe(0);
    expect(drainMs).toBeLessThan(DRAIN_TIMEOUT_MS + 1_500);
    const lines = a.output().split('\n').filter((line) => line.includes('"msg":"draining') || line.includes('"msg":"drained'));
    expect(lines).toHaveLength(2);
    expect(JSON.parse(lines[1] ?? '{}')).toMatchObject({ left: 0 });
    console.log(`drain under load: ${DEVICES} devices, ${failovers.count} failed over to B, 0 lost; A drained and exited in ${Math.round(drainMs)} ms: ${lines.join(' | ')}`);
  }, 90_000);
});
