import type { AddressInfo } from 'node:net';
import { createServer as tlsServer } from 'node:tls';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { deriveDeviceKey, parseSasToken } from '@opendps/attestation';
import { assignedBody, startBaselineBroker, type BaselineAnswer, type BaselineBroker, type BaselineRequest } from '../src/baseline';
import { register } from '../src/clients/register';
import type { ClientTarget } from '../src/clients/types';
import { share } from '../src/processes';
import { arrivalTime, type LoadOptions } from '../src/run';
import { createLoopbackTls, type LoopbackTls } from '../src/tls';

/** The lean MQTT client against a scripted broker: what it does with 202, 429 and errors. */
const ID_SCOPE = '0ne00000A0A';
const GROUP_KEY = Buffer.alloc(32, 5).toString('base64');
let tls: LoopbackTls;
let broker: BaselineBroker | undefined;

beforeAll(() => {
  tls = createLoopbackTls();
});
afterEach(async () => {
  await broker?.close();
  broker = undefined;
});

async function scripted(script: Array<(request: BaselineRequest) => BaselineAnswer>): Promise<{ target: ClientTarget; requests: BaselineRequest[]; passwords: string[] }> {
  const requests: BaselineRequest[] = [];
  const passwords: string[] = [];
  broker = await startBaselineBroker({
    cert: tls.cert,
    key: tls.key,
    authenticate: (_id, _user, password) => {
      passwords.push(password?.toString() ?? '');
      return true;
    },
    answer: (request) => {
      requests.push(request);
      const step = script[Math.min(requests.length, script.length) - 1];
      if (!step) throw new Error('no script');
      return step(request);
    },
  });
  const endpoint = { host: broker.host, port: broker.port };
  return { target: { idScope: ID_SCOPE, mqtt: endpoint, amqp: endpoint, https: endpoint, ca: tls.ca }, requests, passwords };
}

const credentials = (registrationId: string) => ({ registrationId, key: deriveDeviceKey(GROUP_KEY, registrationId) });

it('follows 202 assigning with a poll after retry-after, then reports the phases', async () => {
  const { target, requests } = await scripted([
    () => ({ statusCode: 202, retryAfterSeconds: 0, body: { operationId: 'op-1', status: 'assigning' } }),
    (request) => ({ statusCode: 200, body: assignedBody(request.clientId, request.rid, 'hub.example') }),
  ]);
  // A polling interval far beyond the deadline: only the retry-after of 0 lets this finish.
  const result = await register({ transport: 'mqtt', target, credentials: credentials('dev-1'), pollingIntervalMs: 600_000, timeoutMs: 10_000 });
  expect(requests.map((request) => request.kind)).toEqual(['register', 'poll']);
  expect(requests[1]?.operationId).toBe('op-1');
  expect(result).toMatchObject({ registrationId: 'dev-1', assignedHub: 'hub.example', deviceId: 'dev-1', polls: 1, retries: 0 });
  expect(Object.keys(result.phases)).toEqual(['tcpTls', 'connect', 'register', 'polling', 'assigned']);
  expect(result.phases.assigned).toBeGreaterThanOrEqual(result.phases.tcpTls + result.phases.connect + result.phases.register);
});

it('repeats a 429 and a 503 after their retry-after, and signs the DPS token for the registration', async () => {
  const { target, requests, passwords } = await scripted([
    () => ({ statusCode: 429, retryAfterSeconds: 0, body: { errorCode: 429001, message: 'slow down' } }),
    () => ({ statusCode: 503, retryAfterSeconds: 0, body: { errorCode: 503000 } }),
    (request) => ({ statusCode: 200, body: assignedBody(request.clientId, request.rid, 'hub.example') }),
  ]);
  const result = await register({ transport: 'mqtt', target, credentials: credentials('dev-2'), pollingIntervalMs: 600_000, timeoutMs: 10_000 });
  expect(result.retries).toBe(2);
  expect(requests.map((request) => request.kind)).toEqual(['register', 'register', 'register']);
  expect(parseSasToken(passwords[0] ?? '')).toMatchObject({ resource: `${ID_SCOPE}/registrations/dev-2`, keyName: 'registration' });
});

it('gives up after maxRetries with the last error code', async () => {
  const { target } = await scripted([() => ({ statusCode: 429, retryAfterSeconds: 0, body: { errorCode: 429001 } })]);
  await expect(register({ transport: 'mqtt', target, credentials: credentials('dev-3'), maxRetries: 2, timeoutMs: 10_000 })).rejects.toMatchObject({ code: '429001' });
});

it('reports a refusal by its DPS errorCode, without retrying', async () => {
  const { target, requests } = await scripted([() => ({ statusCode: 401, body: { errorCode: 401002, message: 'no' } })]);
  await expect(register({ transport: 'mqtt', target, credentials: credentials('dev-4'), timeoutMs: 10_000 })).rejects.toMatchObject({ code: '401002' });
  expect(requests).toHaveLength(1);
});

it('times out a registration the service never answers', async () => {
  const { target } = await scripted([() => ({ statusCode: 202, retryAfterSeconds: 0, body: { operationId: 'op', status: 'assigning' } })]);
  // Polls forever at retry-after 0 until the (short) deadline: a deadline, not a sleep.
  await expect(register({ transport: 'mqtt', target, credentials: credentials('dev-5'), timeoutMs: 300 })).rejects.toMatchObject({ code: 'timeout' });
});

it('fails a request at once when the server closes the connection after its PUBACK, with code closed', async () => {
  // A server that acknowledges the register publish and then hangs up without an answer.
  const server = tlsServer({ cert: tls.cert, key: tls.key }, (socket) => {
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    socket.on('data', (chunk: Buffer) => parser.parse(chunk));
    socket.on('error', () => undefined);
    parser.on('packet', (packet: Packet) => {
      if (packet.cmd === 'connect') socket.write(mqttPacket.generate({ cmd: 'connack', returnCode: 0, sessionPresent: false }));
      if (packet.cmd === 'subscribe') socket.write(mqttPacket.generate({ cmd: 'suback', messageId: packet.messageId, granted: [1] }));
      if (packet.cmd === 'publish') socket.end(mqttPacket.generate({ cmd: 'puback', messageId: packet.messageId ?? 0 }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const endpoint = { host: '127.0.0.1', port: (server.address() as AddressInfo).port };
    const target: ClientTarget = { idScope: ID_SCOPE, mqtt: endpoint, amqp: endpoint, https: endpoint, ca: tls.ca };
    // Without the fast failure this would end at the (long) deadline as a timeout.
    await expect(register({ transport: 'mqtt', target, credentials: credentials('dev-6'), timeoutMs: 60_000 })).rejects.toMatchObject({ code: 'closed' });
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}, 30_000);

describe('arrivals of an open loop', () => {
  it('are evenly spaced at the full rate without a ramp', () => {
    expect([0, 1, 2, 10].map((n) => arrivalTime(n, 100, 0))).toEqual([0, 10, 20, 100]);
  });

  it('climb linearly over the ramp, then keep the rate', () => {
    // 100/s ramped over 1 s: 50 arrivals during the ramp (n = rate·t²/2ramp), then one per 10 ms.
    expect(arrivalTime(0, 100, 1000)).toBe(0);
    expect(arrivalTime(50, 100, 1000)).toBeCloseTo(1000);
    expect(arrivalTime(60, 100, 1000)).toBeCloseTo(1100);
    expect(arrivalTime(12.5, 100, 1000)).toBeCloseTo(500);
    const gaps = [1, 2, 3, 4].map((n) => arrivalTime(n, 100, 1000) - arrivalTime(n - 1, 100, 1000));
    expect(gaps[0]).toBeGreaterThan(gaps[3] ?? 0);
  });
});

describe('the share of a worker process', () => {
  const options = { concurrency: 5, count: 11, rate: 30 } as LoadOptions;
  it('splits count, concurrency and rate, and interleaves device indices', () => {
    const shares = [0, 1, 2].map((k) => share(options, k, 3));
    expect(shares.map((s) => s.count)).toEqual([4, 4, 3]);
    expect(shares.map((s) => s.concurrency)).toEqual([2, 2, 1]);
    expect(shares.map((s) => s.rate)).toEqual([10, 10, 10]);
    expect(shares.map((s) => [s.first, s.step])).toEqual([[0, 3], [1, 3], [2, 3]]);
  });
});
