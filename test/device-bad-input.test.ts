/**
 * Bad input on every listener of the composed server (DPS MQTT, the HTTPS listener with its
 * WebSockets, AMQP, the built-in hub): a request the protocol can answer gets a coded
 * DPS error; anything else closes that one connection. After all of it, good devices still register.
 */
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { SharedAccessSignature } from 'azure-iot-common';
import { generateSymmetricKey, validateIndividualEnrollment } from '@opendps/model';
import { enrollments } from '@opendps/store';
import WebSocket from 'ws';
import {
  MqttDpsSession,
  deviceSas,
  httpsRegister,
  mqttRegister,
  portOf,
  rawHttps,
  registerWithSdk,
  type DpsEndpoints,
} from './support/devices';
import { startOpenDps, type OpenDps } from './support/opendps';

const REGISTRATION_ID = 'bad-input-dev';
const key = generateSymmetricKey();
let dps: OpenDps;
let endpoints: DpsEndpoints;
let idScope: string;

beforeAll(async () => {
  dps = await startOpenDps();
  idScope = dps.connection.idScope;
  endpoints = { mqttPort: portOf(dps.connection.endpoints.mqtt), httpsPort: portOf(dps.connection.endpoints.https), ca: dps.ca };
  for (const registrationId of [REGISTRATION_ID, 'bad-input-after-mqtt', 'bad-input-after-https', 'bad-input-during-stall']) {
    await enrollments(dps.server.store, idScope).put(
      validateIndividualEnrollment({ registrationId, attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: generateSymmetricKey() } } }),
    );
  }
});

afterAll(() => dps?.stop());

/** A TLS connection that has finished its handshake, collecting what the server sends until it closes. */
async function openTls(port: number): Promise<{ socket: TLSSocket; closed: Promise<Buffer> }> {
  const socket = tlsConnect({ host: 'localhost', port, ca: dps.ca });
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  const closed = new Promise<Buffer>((resolve) => socket.once('close', () => resolve(Buffer.concat(chunks))));
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  return { socket, closed };
}

const mqttSession = (registrationId = REGISTRATION_ID) =>
  MqttDpsSession.open({ port: endpoints.mqttPort, ca: dps.ca, idScope, registrationId, password: deviceSas(idScope, registrationId, key) });

/** An MQTT remaining length of five continuation bytes: malformed ([MQTT-2.2.3]). */
const BAD_REMAINING_LENGTH = Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x7f]);

describe('DPS MQTT listener', () => {
  test('bytes that are not MQTT before CONNECT close the connection', async () => {
    const { socket, closed } = await openTls(endpoints.mqttPort);
    socket.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
    expect((await closed).length).toBe(0);
  });

  test('a malformed packet after CONNECT closes that connection only', async () => {
    const victim = await mqttSession();
    const bystander = await mqttSession();
    try {
      victim.writeRaw(BAD_REMAINING_LENGTH);
      await victim.closed();
      expect(victim.connected).toBe(false);
      expect(await bystander.register(REGISTRATION_ID)).toMatchObject({ status: 200, body: { status: 'assigned' } });
    } finally {
      await victim.close(true);
      await bystander.close();
    }
  });

  test('a CONNECT whose username is not a DPS username is refused with CONNACK 4', async () => {
    const refused = await MqttDpsSession.open({ port: endpoints.mqttPort, ca: dps.ca, idScope: 'not a scope', registrationId: REGISTRATION_ID, password: 'x' }).then(
      (session) => session.close().then(() => 'accepted'),
      (error: { code?: number }) => error.code,
    );
    expect(refused).toBe(4);
  });

  test.each([
    ['a topic outside $dps/registrations/', 'devices/bad-input-dev/messages/events/'],
    ['a DPS request topic without $rid', '$dps/registrations/PUT/iotdps-register/'],
  ])('a PUBLISH on %s closes the connection (no $rid to answer on)', async (_name, topic) => {
    const session = await mqttSession();
    session.publish(topic, JSON.stringify({ registrationId: REGISTRATION_ID }));
    await session.closed();
    expect(session.connected).toBe(false);
    await session.close(true);
  });

  test.each([
    ['an unknown request topic', '$dps/registrations/POST/iotdps-unknown/', '{}', 400, 400013],
    ['a register payload that is not JSON', '$dps/registrations/PUT/iotdps-register/', '{"registrationId": nope', 400, 400001],
    ['an oversized register payload', '$dps/registrations/PUT/iotdps-register/', JSON.stringify({ registrationId: REGISTRATION_ID, payload: 'x'.repeat(100 * 1024) }), 413, 413001],
  ])('%s is answered with a coded error; the refused connection takes no further request, a new one registers', async (_name, path, body, status, errorCode) => {
    const session = await mqttSession();
    try {
      const answer = await session.request(path, body);
      expect(answer.status).toBe(status);
      expect(answer.body).toMatchObject({ errorCode, trackingId: expect.any(String) });
      // a refusal for good (4xx but 429) ends the connection: the device may only disconnect
      session.publish('$dps/registrations/PUT/iotdps-register/?$rid=after-refusal', JSON.stringify({ registrationId: REGISTRATION_ID }));
      await session.closed();
    } finally {
      await session.close(true);
    }
    const fresh = await mqttSession();
    try {
      expect(await fresh.register(REGISTRATION_ID)).toMatchObject({ status: 200, body: { status: 'assigned' } });
    } finally {
      await fresh.close();
    }
  });

  test('a packet over the size limit closes the connection', async () => {
    const session = await mqttSession();
    session.publish('$dps/registrations/PUT/iotdps-register/?$rid=big', Buffer.alloc(400 * 1024, 0x20));
    await session.closed();
    expect(session.connected).toBe(false);
    await session.close(true);
  });

  test('a TLS client that never sends CONNECT, and a TCP client that never starts TLS, are closed after the connect timeout; others register meanwhile', async () => {
    const staller = await openTls(endpoints.mqttPort);
    const stallerTcp = tlsFreeSocket(endpoints.mqttPort);
    const during = await mqttRegister({ port: endpoints.mqttPort, ca: dps.ca, idScope, registrationId: 'bad-input-during-stall', password: deviceSas(idScope, 'bad-input-during-stall', key) });
    expect(during).toMatchObject({ status: 200, body: { status: 'assigned' } });
    // Closed by the server (default connect timeout 10 s), not by us.
    expect((await staller.closed).length).toBe(0);
    await stallerTcp;
  }, 30_000);
});

/** A TCP connection that never starts TLS; resolves when the server closes it (TLS handshake timeout). */
function tlsFreeSocket(port: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = netConnect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.once('close', () => resolve());
  });
}

describe('HTTPS listener', () => {
  const registerPath = () => `/${idScope}/registrations/${REGISTRATION_ID}/register?api-version=2019-03-31`;
  const authorized = () => ({ authorization: deviceSas(idScope, REGISTRATION_ID, key), 'content-type': 'application/json; charset=utf-8', accept: 'application/json' });

  test.each([
    ['a body that is not JSON', '{"registrationId":', 400, 400001],
    ['an oversized body', JSON.stringify({ registrationId: REGISTRATION_ID, payload: 'x'.repeat(200 * 1024) }), 413, 413001],
  ])('%s on register: coded error with x-ms-error-code', async (_name, body, status, errorCode) => {
    const response = await rawHttps({ port: endpoints.httpsPort, ca: dps.ca, method: 'PUT', path: registerPath(), headers: authorized(), body });
    expect(response.status).toBe(status);
    expect(response.headers['x-ms-error-code']).toBe(String(errorCode));
    expect(response.json).toMatchObject({ errorCode });
  });

  test('bytes that are not HTTP get 400 and the connection is closed', async () => {
    const { socket, closed } = await openTls(endpoints.httpsPort);
    socket.write(Buffer.from([0x10, 0x00, 0xff, 0xfe, 0x0d, 0x0a, 0x0d, 0x0a]));
    expect((await closed).toString('latin1')).toMatch(/^HTTP\/1\.1 400 /);
  });

  test('a WebSocket upgrade with a wrong subprotocol is refused with a coded 400', async () => {
    const refusal = await new Promise<{ status?: number; code?: string | string[]; body: string }>((resolve, reject) => {
      const ws = new WebSocket(`wss://localhost:${endpoints.httpsPort}/$iothub/websocket`, 'not-mqtt', { ca: dps.ca });
      ws.on('open', () => reject(new Error('the upgrade was accepted')));
      ws.on('error', () => undefined);
      ws.on('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode, code: res.headers['x-ms-error-code'], body }));
      });
    });
    expect(refusal.status).toBe(400);
    expect(refusal.code).toBe('400015');
    expect(JSON.parse(refusal.body)).toMatchObject({ errorCode: 400015 });
  });

  test('garbage MQTT inside an accepted mqtt WebSocket closes that WebSocket', async () => {
    const ws = new WebSocket(`wss://localhost:${endpoints.httpsPort}/$iothub/websocket`, 'mqtt', { ca: dps.ca });
    ws.on('error', () => undefined);
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('unexpected-response', () => reject(new Error('upgrade refused')));
    });
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    ws.send(BAD_REMAINING_LENGTH);
    expect(await closed).toBeGreaterThan(0);
  });

  test('a TLS client that stalls does not keep others from registering', async () => {
    const staller = await openTls(endpoints.httpsPort);
    try {
      const response = await httpsRegister(endpoints, idScope, 'bad-input-during-stall', { authorization: deviceSas(idScope, 'bad-input-during-stall', key) });
      expect([response.status, response.json?.status]).toEqual([200, 'assigned']);
    } finally {
      staller.socket.destroy();
    }
  });
});

describe('AMQP listener', () => {
  test('a header that is not AMQP gets the server protocol header and the connection closes', async () => {
    const { socket, closed } = await openTls(portOf(dps.connection.endpoints.amqp));
    socket.write(Buffer.from('HTTP/1.1 GET\r\n\r\n'));
    const answer = await closed;
    // AMQP 1.0 §2.2: the header the server does speak (AMQP over SASL), then the close.
    expect(answer.equals(Buffer.from('AMQP\x03\x01\x00\x00', 'latin1'))).toBe(true);
  });
});

describe('built-in hub listener', () => {
  const hubPort = () => portOf(dps.connection.endpoints.hubs[0]);

  test('a CONNECT with a malformed remaining length closes the connection', async () => {
    const { socket, closed } = await openTls(hubPort());
    socket.write(Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x7f]));
    expect((await closed).length).toBe(0);
  });

  test('a registry write with a body that is not JSON gets a coded IoT Hub 400', async () => {
    const hubConnectionString = dps.connection.instances[0]!.linkedHubs[0]!.connectionString!;
    const fields = Object.fromEntries(hubConnectionString.split(';').map((part) => [part.slice(0, part.indexOf('=')), part.slice(part.indexOf('=') + 1)]));
    const token = SharedAccessSignature.create(String(fields.HostName), String(fields.SharedAccessKeyName), String(fields.SharedAccessKey), Math.floor(Date.now() / 1000) + 600);
    const response = await rawHttps({
      port: hubPort(),
      ca: dps.ca,
      method: 'PUT',
      path: '/devices/bad-json?api-version=2021-04-12',
      headers: { authorization: token.toString(), 'content-type': 'application/json' },
      body: '{"deviceId": "bad-json",',
    });
    expect(response.status).toBe(400);
    expect(String(response.json?.Message)).toMatch(/^ErrorCode:ArgumentInvalid;/);
  });
});

describe('after all of that', () => {
  test('good devices still register over MQTT (unmodified SDK) and HTTPS', async () => {
    const result = await registerWithSdk('mqtt', endpoints, idScope, { kind: 'symmetricKey', registrationId: 'bad-input-after-mqtt', key });
    expect(result).toMatchObject({ status: 'assigned', deviceId: 'bad-input-after-mqtt' });
    const response = await httpsRegister(endpoints, idScope, 'bad-input-after-https', { authorization: deviceSas(idScope, 'bad-input-after-https', key) });
    expect([response.status, response.json?.status]).toEqual([200, 'assigned']);
  });
});
