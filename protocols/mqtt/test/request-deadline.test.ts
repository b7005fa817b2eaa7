import { Errors } from '@opendps/model';
import { createServer, type Server } from 'node:https';
import mqtt, { type MqttClient } from 'mqtt';
import { WebSocketServer } from 'ws';
import { createDpsMqttFrontEnd, DEFAULT_REFUSAL_GRACE_MS, isFinalRefusal, type DpsMqttFrontEnd } from '../src';
import {
  closedWithin,
  FakeClock,
  connectDevice,
  ID_SCOPE,
  nextMessage,
  operationIdFor,
  pollTopic,
  registerTopic,
  ScriptedRegistration,
  startFrontEnd,
  testPki,
  usernameFor,
  type Running,
} from './helpers';

const RES = '$dps/registrations/res/#';
const TIMEOUT_MS = 30_000;
const GRACE_MS = DEFAULT_REFUSAL_GRACE_MS;

const forgedSas = (registrationId: string) =>
  `SharedAccessSignature sr=${ID_SCOPE}/registrations/${registrationId}&sig=Zm9yZ2Vk&skn=registration&se=1795684788`;

test('isFinalRefusal: every 4xx but 429', () => {
  expect([400, 401, 404, 413, 428].every(isFinalRefusal)).toBe(true);
  expect([200, 202, 429, 500, 503].some(isFinalRefusal)).toBe(false);
});

describe('request deadlines over MQTT/TLS', () => {
  const service = new ScriptedRegistration();
  const clock = new FakeClock();
  let running: Running;
  const clients: MqttClient[] = [];

  async function device(registrationId: string): Promise<MqttClient> {
    const client = await connectDevice(running.port, registrationId, { keepalive: 0, password: forgedSas(registrationId) });
    clients.push(client);
    await client.subscribeAsync(RES, { qos: 1 });
    return client;
  }

  beforeAll(async () => {
    running = await startFrontEnd({ registration: service, requestTimeoutMs: TIMEOUT_MS, timers: clock });
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.endAsync(true)));
    // fire what the closed connections left behind, so no test sees another's timers
    clock.advance(3_600_000);
  });

  afterAll(() => running.close());

  test('a forged SAS with keepalive 0 gets its 401 on the response topic, then is closed after the grace to disconnect', async () => {
    service.onRegister = async () => {
      throw Errors.invalidSignature();
    };
    const client = await device('forger-1');
    const response = nextMessage(client);
    client.publish(registerTopic('f1'), JSON.stringify({ registrationId: 'forger-1' }), { qos: 1 });
    const { topic, json } = await response;
    expect(topic).toBe('$dps/registrations/res/401/?$rid=f1');
    expect(json).toMatchObject({ errorCode: 401002 });
    // the SDK unsubscribes and disconnects itself after a refusal: it gets the grace to do so
    await clock.armed(GRACE_MS);
    clock.advance(GRACE_MS - 1);
    expect(client.connected).toBe(true);
    const closed = closedWithin(client);
    clock.advance(1);
    await closed;
  });

  test('a request after a refusal closes the connection at once', async () => {
    service.onRegister = async () => {
      throw Errors.invalidSignature();
    };
    const client = await device('forger-2');
    const response = nextMessage(client);
    client.publish(registerTopic('g1'), '{}', { qos: 1 });
    expect((await response).topic).toBe('$dps/registrations/res/401/?$rid=g1');
    const closed = closedWithin(client);
    client.publish(registerTopic('g2'), '{}', { qos: 1 });
    await closed;
    expect(service.registered.filter((request) => request.registrationId === 'forger-2')).toHaveLength(1);
  });

  test('a 400 (a topic we can answer but not serve) is a refusal too', async () => {
    const client = await device('bad-topic');
    const response = nextMessage(client);
    client.publish('$dps/registrations/DELETE/nothing/?$rid=b1', ' ', { qos: 1 });
    expect((await response).topic).toBe('$dps/registrations/res/400/?$rid=b1');
    await clock.armed(GRACE_MS);
    const closed = closedWithin(client);
    clock.advance(GRACE_MS);
    await closed;
  });

  test('a connection that never sends a request is closed when the bound after CONNECT runs out', async () => {
    const client = await device('silent-1');
    await clock.armed(TIMEOUT_MS);
    clock.advance(TIMEOUT_MS - 1);
    expect(client.connected).toBe(true);
    const closed = closedWithin(client);
    clock.advance(1);
    await closed;
  });

  test('a 429 keeps the connection for the timeout plus retry-after; the retry is answered on it', async () => {
    let calls = 0;
    service.onRegister = async (request) => {
      calls += 1;
      if (calls === 1) throw Errors.throttled(undefined, { 'retry-after': '5' });
      return { status: 202, retryAfterSeconds: 2, body: { operationId: operationIdFor(request.registrationId), status: 'assigning' } };
    };
    const client = await device('throttled-1');
    const throttled = nextMessage(client);
    client.publish(registerTopic('t1'), '{}', { qos: 1 });
    expect((await throttled).topic).toBe('$dps/registrations/res/429/?$rid=t1&retry-after=5');
    await clock.armed(TIMEOUT_MS + 5_000);
    // past the plain timeout, still inside timeout + retry-after: the device's retry is served
    clock.advance(TIMEOUT_MS + 4_999);
    const retried = nextMessage(client);
    client.publish(registerTopic('t2'), '{}', { qos: 1 });
    expect((await retried).topic).toBe('$dps/registrations/res/202/?$rid=t2&retry-after=2');
    // a polling device gets the timeout plus its retry-after, counted from the last answer
    await clock.armed(TIMEOUT_MS + 2_000);
    clock.advance(TIMEOUT_MS + 1_999);
    const polled = nextMessage(client);
    client.publish(pollTopic('p1', operationIdFor('throttled-1')), ' ', { qos: 1 });
    expect((await polled).topic).toBe('$dps/registrations/res/200/?$rid=p1');
    // assigned: the device would disconnect; one that does not is closed after the timeout
    await clock.armed(TIMEOUT_MS);
    const closed = closedWithin(client);
    clock.advance(TIMEOUT_MS);
    await closed;
  });

  test('a 5xx is retried on the same connection too', async () => {
    let calls = 0;
    service.onRegister = async (request) => {
      calls += 1;
      if (calls === 1) throw Errors.hubUnavailable(undefined, { 'retry-after': '1' });
      return { status: 202, retryAfterSeconds: 2, body: { operationId: operationIdFor(request.registrationId), status: 'assigning' } };
    };
    const client = await device('unavailable-1');
    const failed = nextMessage(client);
    client.publish(registerTopic('u1'), '{}', { qos: 1 });
    expect((await failed).topic).toBe('$dps/registrations/res/503/?$rid=u1&retry-after=1');
    const retried = nextMessage(client);
    client.publish(registerTopic('u2'), '{}', { qos: 1 });
    expect((await retried).topic).toBe('$dps/registrations/res/202/?$rid=u2&retry-after=2');
    expect(client.connected).toBe(true);
  });
});

describe('request deadlines over MQTT/WebSocket', () => {
  const service = new ScriptedRegistration(async () => {
    throw Errors.invalidSignature();
  });
  const clock = new FakeClock();
  let frontEnd: DpsMqttFrontEnd;
  let server: Server;
  let port: number;
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    const { server: certificate } = testPki();
    frontEnd = createDpsMqttFrontEnd({ registration: service, requestTimeoutMs: TIMEOUT_MS, timers: clock });
    const wss = new WebSocketServer({ noServer: true, handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : false) });
    server = createServer({ cert: certificate.certificatePem, key: certificate.privateKeyPem });
    server.on('upgrade', (request, socket, head) => wss.handleUpgrade(request, socket, head, (ws) => frontEnd.handleWebSocket(ws, request)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.endAsync(true)));
    await frontEnd.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  async function wsDevice(registrationId: string): Promise<MqttClient> {
    const client = await mqtt.connectAsync(`wss://localhost:${port}/$iothub/websocket`, {
      protocolVersion: 4,
      clientId: registrationId,
      username: usernameFor(registrationId),
      password: forgedSas(registrationId),
      keepalive: 0,
      reconnectPeriod: 0,
      ca: testPki().ca.certificatePem,
      wsOptions: { protocol: 'mqtt' },
    });
    clients.push(client);
    await client.subscribeAsync(RES, { qos: 1 });
    return client;
  }

  test('a forged SAS over wss gets its 401, then is closed after the grace to disconnect', async () => {
    const client = await wsDevice('ws-forger');
    const response = nextMessage(client);
    client.publish(registerTopic('wf1'), '{}', { qos: 1 });
    expect((await response).topic).toBe('$dps/registrations/res/401/?$rid=wf1');
    await clock.armed(GRACE_MS);
    const closed = closedWithin(client);
    clock.advance(GRACE_MS);
    await closed;
  });

  test('a wss connection that never sends a request is closed after the bound', async () => {
    const client = await wsDevice('ws-silent');
    await clock.armed(TIMEOUT_MS);
    const closed = closedWithin(client);
    clock.advance(TIMEOUT_MS);
    await closed;
  });
});
