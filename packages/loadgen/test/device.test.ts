import { deriveDeviceKey, parseSasToken, verifySasToken } from '@opendps/attestation';
import { assignedBody, startBaselineBroker, type BaselineAnswer, type BaselineBroker, type BaselineRequest } from '../src/baseline';
import { DeviceRegistrationError, registerDevice, type DeviceOptions } from '../src/device';
import { createLoopbackTls, type LoopbackTls } from '../src/tls';

const ID_SCOPE = '0ne00000A0A';
const GROUP_KEY = Buffer.alloc(32, 7).toString('base64');
let tls: LoopbackTls;
const brokers: BaselineBroker[] = [];

beforeAll(() => {
  tls = createLoopbackTls();
});
afterEach(async () => {
  await Promise.all(brokers.splice(0).map((broker) => broker.close()));
});

async function broker(options: Partial<Parameters<typeof startBaselineBroker>[0]> = {}): Promise<BaselineBroker> {
  const started = await startBaselineBroker({ cert: tls.cert, key: tls.key, ...options });
  brokers.push(started);
  return started;
}

function device(target: BaselineBroker, registrationId: string, extra: Partial<DeviceOptions> = {}): DeviceOptions {
  return {
    host: target.host,
    port: target.port,
    ca: tls.ca,
    idScope: ID_SCOPE,
    registrationId,
    key: deriveDeviceKey(GROUP_KEY, registrationId),
    timeoutMs: 5000,
    ...extra,
  };
}

/** A scripted broker: answers the n-th request with script[n]. */
async function scripted(script: Array<(request: BaselineRequest) => BaselineAnswer>) {
  const requests: BaselineRequest[] = [];
  const target = await broker({
    answer: (request) => {
      requests.push(request);
      const next = script[Math.min(requests.length, script.length) - 1];
      if (!next) throw new Error('empty script');
      return next(request);
    },
  });
  return { target, requests };
}

describe('registerDevice against a bare TLS aedes broker', () => {
  it('sends the SDK CONNECT (username, symmetric-key SAS) and is assigned on one round trip', async () => {
    const connects: Array<{ clientId: string; username?: string; password?: string }> = [];
    const target = await broker({
      assignedHub: 'hub-under-test.local:8884',
      authenticate: (clientId, username, password) => {
        connects.push({ clientId, username, password: password?.toString() });
        return true;
      },
    });
    const ids = ['dev-a', 'dev-b', 'dev-c'];
    const results = await Promise.all(ids.map((id) => registerDevice(device(target, id))));

    for (const [i, result] of results.entries()) {
      expect(result).toMatchObject({ status: 'assigned', assignedHub: 'hub-under-test.local:8884', deviceId: ids[i], polls: 0, retries: 0 });
      expect(result.latencyMs).toBeGreaterThan(0);
    }
    expect(target.answered).toBe(3);
    expect(connects.map((c) => c.clientId).sort()).toEqual(ids);
    for (const connect of connects) {
      const resource = `${ID_SCOPE}/registrations/${connect.clientId}`;
      expect(connect.username).toBe(`${resource}/api-version=2019-03-31&ClientVersion=azure-iot-provisioning-device%2F1.9.1`);
      // Raw sr, field order sr, sig, skn, se, signed with the group-derived key (docs/device-wire.md §1).
      expect(connect.password).toMatch(new RegExp(`^SharedAccessSignature sr=${resource}&sig=[^&]+&skn=registration&se=\\d+$`));
      const token = parseSasToken(connect.password);
      expect(verifySasToken(token, { expectedResource: resource, keys: [deriveDeviceKey(GROUP_KEY, connect.clientId)] })).toBe(0);
    }
  });

  it('follows 202 assigning with polls (new $rid each, retry-after honoured) until assigned', async () => {
    const assigning = (): BaselineAnswer => ({
      statusCode: 202,
      retryAfterSeconds: 0.05,
      body: { operationId: 'op-42', status: 'assigning' },
    });
    const { target, requests } = await scripted([
      assigning,
      assigning,
      assigning,
      (request) => ({ statusCode: 200, body: assignedBody(request.clientId, request.rid, 'hub-b.local') }),
    ]);
    const result = await registerDevice(device(target, 'poller'));

    expect(result).toMatchObject({ status: 'assigned', assignedHub: 'hub-b.local', polls: 3, retries: 0 });
    expect(requests.map((r) => r.kind)).toEqual(['register', 'poll', 'poll', 'poll']);
    expect(requests[0]?.body).toBe('{"registrationId":"poller"}');
    expect(requests.slice(1).map((r) => [r.operationId, r.body])).toEqual(Array(3).fill(['op-42', ' ']));
    expect(new Set(requests.map((r) => r.rid)).size).toBe(4);
  });

  it('repeats a throttled (429) or failed (5xx) request after retry-after', async () => {
    const { target, requests } = await scripted([
      () => ({ statusCode: 429, retryAfterSeconds: 0.05, body: { errorCode: 429001, message: 'Throttled' } }),
      () => ({ statusCode: 503, retryAfterSeconds: 0.05, body: { errorCode: 503000, message: 'Busy' } }),
      (request) => ({ statusCode: 200, body: assignedBody(request.clientId, request.rid, 'hub-c.local') }),
    ]);
    const result = await registerDevice(device(target, 'throttled'));
    expect(result).toMatchObject({ assignedHub: 'hub-c.local', polls: 0, retries: 2 });
    expect(requests.map((r) => r.kind)).toEqual(['register', 'register', 'register']);
  });

  it('fails clearly on an error status, with the status code and the body', async () => {
    const body = { errorCode: 401002, trackingId: 't', message: 'Unauthorized', timestampUtc: new Date().toISOString() };
    const { target, requests } = await scripted([() => ({ statusCode: 401, body })]);
    const failure = await registerDevice(device(target, 'refused')).catch((error: unknown) => error);

    expect(failure).toBeInstanceOf(DeviceRegistrationError);
    expect(failure).toMatchObject({ reason: 'status', statusCode: 401, result: body, registrationId: 'refused' });
    expect((failure as Error).message).toContain('errorCode 401002: Unauthorized');
    expect(requests).toHaveLength(1); // 300-428 is fatal: no retry
  });

  it('fails on a failed registration and on a status the SDK does not accept', async () => {
    const failedBody = { operationId: 'op', status: 'failed', registrationState: { errorCode: 400208, errorMessage: 'No hub' } };
    const failed = await scripted([() => ({ statusCode: 200, body: failedBody })]);
    await expect(registerDevice(device(failed.target, 'f1'))).rejects.toMatchObject({ reason: 'failed', result: failedBody });

    const disabled = await scripted([() => ({ statusCode: 200, body: { operationId: 'op', status: 'disabled' } })]);
    await expect(registerDevice(device(disabled.target, 'f2'))).rejects.toMatchObject({ reason: 'unexpected-status' });

    const garbage = await scripted([() => ({ statusCode: 200, body: 'not json {' })]);
    await expect(registerDevice(device(garbage.target, 'f3'))).rejects.toMatchObject({ reason: 'protocol' });
  });

  it('reports a refused CONNECT, an untrusted certificate and a silent server distinctly', async () => {
    const refusing = await broker({ authenticate: () => false });
    await expect(registerDevice(device(refusing, 'nope'))).rejects.toMatchObject({ reason: 'connection' });

    const target = await broker();
    const otherCa = createLoopbackTls().ca;
    await expect(registerDevice(device(target, 'wrong-ca', { ca: otherCa }))).rejects.toMatchObject({ reason: 'connection' });

    const silent = await scripted([() => ({ statusCode: 202, retryAfterSeconds: 60, body: { operationId: 'o', status: 'assigning' } })]);
    const started = Date.now();
    await expect(registerDevice(device(silent.target, 'slow', { timeoutMs: 300 }))).rejects.toMatchObject({ reason: 'timeout' });
    expect(Date.now() - started).toBeLessThan(3000);
  });
});
