import { DpsError, Errors } from '@opendps/model';
import { createIntermediateCa, createLeaf } from '@opendps/pki';
import { X509Certificate } from 'node:crypto';
import { connect as tlsConnect } from 'node:tls';
import type { MqttClient } from 'mqtt';
import {
  assigned,
  closedWithin,
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

describe('DPS over MQTT/TLS', () => {
  const service = new ScriptedRegistration();
  let running: Running;
  const clients: MqttClient[] = [];

  async function device(registrationId: string, extra = {}): Promise<MqttClient> {
    const client = await connectDevice(running.port, registrationId, extra);
    clients.push(client);
    return client;
  }

  async function subscribed(registrationId: string): Promise<MqttClient> {
    const client = await device(registrationId);
    await client.subscribeAsync(RES, { qos: 1 });
    return client;
  }

  beforeAll(async () => {
    running = await startFrontEnd({ registration: service, connectTimeoutMs: 300, maxPacketBytes: 96 * 1024 });
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.endAsync(true)));
    service.registered.length = 0;
    service.polled.length = 0;
    service.authenticated.length = 0;
    service.onAuthenticate = async () => undefined;
    service.onRegister = async (request) => ({
      status: 202,
      retryAfterSeconds: 3,
      body: { operationId: operationIdFor(request.registrationId), status: 'assigning', registrationState: { registrationId: request.registrationId, status: 'assigning' } },
    });
    service.onOperationStatus = async (request) => assigned(request.registrationId, request.operationId);
  });

  afterAll(() => running.close());

  test('register -> 202 with retry-after -> poll -> 200, each on its own $rid', async () => {
    const client = await subscribed('dev-1');
    const first = nextMessage(client);
    await client.publishAsync(registerTopic('11111111-aaaa'), JSON.stringify({ registrationId: 'dev-1', payload: { model: 'x1' } }), { qos: 1 });
    const accepted = await first;
    expect(accepted.topic).toBe('$dps/registrations/res/202/?$rid=11111111-aaaa&retry-after=3');
    expect(accepted.json).toEqual({
      operationId: operationIdFor('dev-1'),
      status: 'assigning',
      registrationState: { registrationId: 'dev-1', status: 'assigning' },
    });
    expect(service.registered).toHaveLength(1);
    const request = service.registered[0]!;
    expect(request).toMatchObject({
      idScope: ID_SCOPE,
      registrationId: 'dev-1',
      transport: 'mqtt',
      apiVersion: '2019-03-31',
      payload: { model: 'x1' },
      proof: { kind: 'sas', token: `SharedAccessSignature sr=${ID_SCOPE}/registrations/dev-1&sig=abc%3D&skn=registration&se=1795684788` },
    });
    expect(request.clientAddress).toMatch(/127\.0\.0\.1$/);

    const second = nextMessage(client);
    await client.publishAsync(pollTopic('22222222-bbbb', operationIdFor('dev-1')), ' ', { qos: 1 });
    const done = await second;
    expect(done.topic).toBe('$dps/registrations/res/200/?$rid=22222222-bbbb');
    expect(done.json).toEqual(assigned('dev-1', operationIdFor('dev-1')).body);
    expect(service.polled).toEqual([
      expect.objectContaining({ idScope: ID_SCOPE, registrationId: 'dev-1', operationId: operationIdFor('dev-1'), transport: 'mqtt' }),
    ]);
  });

  test.each([
    ['401', Errors.invalidSignature(), '$dps/registrations/res/401/?$rid=r1', 401002],
    ['404', Errors.enrollmentNotFound(), '$dps/registrations/res/404/?$rid=r1', 404201],
    ['429 with retry-after', Errors.throttled(undefined, { 'retry-after': '5' }), '$dps/registrations/res/429/?$rid=r1&retry-after=5', 429001],
  ])('a %s DpsError goes out with its status, its body and nothing else', async (_name, error: DpsError, topic, errorCode) => {
    service.onRegister = async () => {
      throw error;
    };
    const client = await subscribed('dev-err');
    const response = nextMessage(client);
    await client.publishAsync(registerTopic('r1'), JSON.stringify({ registrationId: 'dev-err' }), { qos: 1 });
    const { topic: received, json } = await response;
    expect(received).toBe(topic);
    expect(json).toEqual(JSON.parse(JSON.stringify(error.toJSON())));
    expect(json.errorCode).toBe(errorCode);
  });

  test('an unexpected failure in the service is a coded 500 that leaks nothing', async () => {
    service.onRegister = async () => {
      throw new Error('database password is hunter2');
    };
    const client = await subscribed('dev-500');
    const response = nextMessage(client);
    await client.publishAsync(registerTopic('r5'), '{}', { qos: 1 });
    const { topic, payload, json } = await response;
    expect(topic).toBe('$dps/registrations/res/500/?$rid=r5');
    expect(json.errorCode).toBe(500001);
    expect(payload.toString()).not.toContain('hunter2');
  });

  test('bodies are ASCII JSON: non-ASCII is escaped as \\uXXXX (docs/device-wire.md, trap 4)', async () => {
    service.onRegister = async (request) => ({
      status: 200,
      body: { operationId: 'op-1', status: 'assigned', registrationState: { registrationId: request.registrationId, status: 'assigned', payload: { city: 'Zürich', mood: '😀' } } },
    });
    const client = await subscribed('dev-ascii');
    const response = nextMessage(client);
    await client.publishAsync(registerTopic('r2'), JSON.stringify({ registrationId: 'dev-ascii' }), { qos: 1 });
    const { payload, json } = await response;
    expect([...payload].every((byte) => byte < 0x80)).toBe(true);
    expect(payload.toString('ascii')).toContain('Z\\u00fcrich');
    expect(json).toMatchObject({ registrationState: { payload: { city: 'Zürich', mood: '😀' } } });
  });

  test('PUBACK comes at once even when the registration takes longer (docs/device-wire.md, trap 14)', async () => {
    // The registration is held until the PUBACK has arrived: the ack cannot be waiting for it.
    let finish!: () => void;
    const held = new Promise<void>((resolve) => (finish = resolve));
    service.onRegister = async (request) => {
      await held;
      return assigned(request.registrationId, 'op-slow');
    };
    const client = await subscribed('dev-slow');
    let answered = false;
    const response = nextMessage(client).then((message) => ((answered = true), message));
    await client.publishAsync(registerTopic('r3'), JSON.stringify({ registrationId: 'dev-slow' }), { qos: 1 });
    expect(answered).toBe(false);
    finish();
    expect((await response).json).toMatchObject({ operationId: 'op-slow', status: 'assigned' });
  });

  test('only $dps/registrations/res/# may be subscribed, at QoS <= 1', async () => {
    const client = await device('dev-sub');
    // mqtt.js rejects a SUBACK holding 0x80 and hands the packet over with the error
    const refused = (await client
      .subscribeAsync({ '#': { qos: 1 }, [RES]: { qos: 2 }, 'devices/dev-sub/messages/devicebound/#': { qos: 1 } })
      .then(
        () => undefined,
        (error: { packet?: { granted?: number[] } }) => error,
      )) as { packet?: { granted?: number[] } } | undefined;
    expect(refused?.packet?.granted).toEqual([128, 1, 128]);
    // what was granted works: the response filter alone is accepted
    expect(await client.subscribeAsync(RES, { qos: 0 })).toEqual([{ topic: RES, qos: 0 }]);
  });

  test('a response goes to the requesting connection only', async () => {
    const requester = await subscribed('dev-a');
    const bystander = await subscribed('dev-b');
    const overheard: string[] = [];
    bystander.on('message', (topic) => overheard.push(topic));
    const response = nextMessage(requester);
    await requester.publishAsync(registerTopic('ra'), JSON.stringify({ registrationId: 'dev-a' }), { qos: 1 });
    await response;
    // the bystander's own request is answered after the requester's, on a FIFO connection
    const own = nextMessage(bystander);
    await bystander.publishAsync(registerTopic('rb'), JSON.stringify({ registrationId: 'dev-b' }), { qos: 1 });
    await own;
    expect(overheard).toEqual(['$dps/registrations/res/202/?$rid=rb&retry-after=3']);
  });

  test('a publish outside the DPS grammar closes that connection only', async () => {
    const rogue = await subscribed('dev-rogue');
    const other = await subscribed('dev-other');
    rogue.publish('devices/dev-other/messages/events/', 'hi', { qos: 1 });
    await closedWithin(rogue);
    const response = nextMessage(other);
    await other.publishAsync(registerTopic('ok'), '{}', { qos: 1 });
    expect((await response).topic).toBe('$dps/registrations/res/202/?$rid=ok&retry-after=3');
    expect(service.registered.map((request) => request.registrationId)).toEqual(['dev-other']);
  });

  test('publishing a forged response is answered 400 to its sender and reaches nobody else', async () => {
    const forger = await subscribed('dev-forger');
    const victim = await subscribed('dev-victim');
    const overheard: string[] = [];
    victim.on('message', (topic) => overheard.push(topic));
    const response = nextMessage(forger);
    await forger.publishAsync('$dps/registrations/res/200/?$rid=victim-rid', JSON.stringify({ status: 'assigned' }), { qos: 1 });
    const { topic, json } = await response;
    expect(topic).toBe('$dps/registrations/res/400/?$rid=victim-rid');
    expect(json.errorCode).toBe(400013);
    const ping = nextMessage(victim);
    await victim.publishAsync(registerTopic('v1'), '{}', { qos: 1 });
    await ping;
    expect(overheard).toEqual(['$dps/registrations/res/202/?$rid=v1&retry-after=3']);
  });

  test.each([
    ['no /? before the query', '$dps/registrations/PUT/iotdps-register?$rid=g1', 'g1'],
    ['an unknown operation', '$dps/registrations/PUT/iotdps-get-registration/?$rid=g2', 'g2'],
    ['a poll without operationId', '$dps/registrations/GET/iotdps-get-operationstatus/?$rid=g3', 'g3'],
  ])('bad topic grammar with a recoverable $rid (%s) gets a coded 400', async (_name, topic, rid) => {
    const client = await subscribed('dev-grammar');
    const response = nextMessage(client);
    await client.publishAsync(topic, ' ', { qos: 1 });
    const received = await response;
    expect(received.topic).toBe(`$dps/registrations/res/400/?$rid=${rid}`);
    expect(received.json).toMatchObject({ errorCode: 400013 });
    expect(service.registered).toHaveLength(0);
    expect(service.polled).toHaveLength(0);
  });

  test('a DPS topic without a $rid closes the connection', async () => {
    const client = await subscribed('dev-norid');
    client.publish('$dps/registrations/PUT/iotdps-register/', '{}', { qos: 1 });
    await closedWithin(client);
    expect(service.registered).toHaveLength(0);
  });

  test('a non-JSON body is a coded 400 and never reaches the service', async () => {
    const client = await subscribed('dev-json');
    const response = nextMessage(client);
    await client.publishAsync(registerTopic('j1'), '{"registrationId": ', { qos: 1 });
    const { topic, json } = await response;
    expect(topic).toBe('$dps/registrations/res/400/?$rid=j1');
    expect(json.errorCode).toBe(400001);
    expect(service.registered).toHaveLength(0);
  });

  test("a body naming another registration is refused (it must match CONNECT's)", async () => {
    const client = await subscribed('dev-self');
    const response = nextMessage(client);
    await client.publishAsync(registerTopic('m1'), JSON.stringify({ registrationId: 'dev-someone-else' }), { qos: 1 });
    const { topic, json } = await response;
    expect(topic).toBe('$dps/registrations/res/400/?$rid=m1');
    expect(json.errorCode).toBe(400009);
    expect(service.registered).toHaveLength(0);
  });

  test('an empty register body is a register without payload: it reaches the service (which attests first)', async () => {
    const client = await subscribed('dev-empty');
    const response = nextMessage(client);
    await client.publishAsync(registerTopic('e1'), '', { qos: 1 });
    const { topic } = await response;
    expect(topic).toBe('$dps/registrations/res/202/?$rid=e1&retry-after=3');
    expect(service.registered).toHaveLength(1);
    expect(service.registered[0]).not.toHaveProperty('payload');
    // ... so a wrong key gets the service's 401, not a 400 for the body
    service.onRegister = async () => {
      throw Errors.invalidSignature();
    };
    const refused = nextMessage(client);
    await client.publishAsync(registerTopic('e2'), '', { qos: 1 });
    expect((await refused).topic).toBe('$dps/registrations/res/401/?$rid=e2');
  });

  test('the body may name the registration of CONNECT in another case (registration ids are case-insensitive)', async () => {
    const client = await subscribed('dev-case');
    const response = nextMessage(client);
    await client.publishAsync(registerTopic('c1'), JSON.stringify({ registrationId: 'DEV-Case', forceRegistration: true }), { qos: 1 });
    expect((await response).topic).toBe('$dps/registrations/res/202/?$rid=c1&retry-after=3');
    expect(service.registered[0]).toMatchObject({ registrationId: 'dev-case', forceRegistration: true });
  });

  test('a body over 96 KB is a coded 413; a packet far beyond it closes that connection; others go on', async () => {
    const client = await subscribed('dev-big');
    const response = nextMessage(client);
    const oversized = JSON.stringify({ registrationId: 'dev-big', payload: { blob: 'x'.repeat(97 * 1024) } });
    await client.publishAsync(registerTopic('b1'), oversized, { qos: 1 });
    const { topic, json } = await response;
    expect(topic).toBe('$dps/registrations/res/413/?$rid=b1');
    expect(json.errorCode).toBe(413001);

    const huge = await subscribed('dev-huge');
    huge.publish(registerTopic('b2'), Buffer.alloc(1024 * 1024, 0x20), { qos: 1 });
    await closedWithin(huge);

    const other = await subscribed('dev-after');
    const ok = nextMessage(other);
    await other.publishAsync(registerTopic('b3'), '{}', { qos: 1 });
    expect((await ok).topic).toBe('$dps/registrations/res/202/?$rid=b3&retry-after=3');
    expect(service.registered.map((request) => request.registrationId)).toEqual(['dev-after']);
  });

  test.each([
    ['a username that is not the DPS grammar', 4, { username: 'dev-u/?api-version=2021-04-12' }],
    ['a client id other than the registration id', 2, { clientId: 'someone-else' }],
    ['an invalid registration id', 2, { clientId: '-bad-', username: usernameFor('-bad-') }],
    ['neither a password nor a client certificate', 5, { password: undefined }],
  ])('CONNECT with %s is refused with return code %i', async (_name, returnCode, extra) => {
    await expect(connectDevice(running.port, 'dev-u', extra)).rejects.toMatchObject({ code: returnCode });
  });

  test('a TLS client that never sends CONNECT is closed after the connect timeout', async () => {
    const socket = tlsConnect({ port: running.port, host: '127.0.0.1', ca: testPki().ca.certificatePem, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    const started = Date.now();
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  test('an X.509 device: no password, its TLS chain reaches the service DER and leaf first', async () => {
    const { ca } = testPki();
    const intermediate = createIntermediateCa(ca, { commonName: 'OpenDPS test intermediate' });
    const leaf = createLeaf(intermediate, { commonName: 'x509-dev-1' });
    const client = await device('x509-dev-1', {
      password: undefined,
      cert: leaf.certificatePem + intermediate.certificatePem,
      key: leaf.privateKeyPem,
    });
    await client.subscribeAsync(RES, { qos: 1 });
    const response = nextMessage(client);
    await client.publishAsync(registerTopic('x1'), JSON.stringify({ registrationId: 'x509-dev-1' }), { qos: 1 });
    await response;
    const proof = service.registered[0]?.proof;
    expect(proof?.kind).toBe('x509');
    // The chain was judged at CONNECT, for the registration id of the username.
    expect(service.authenticated.map((request) => [request.registrationId, request.proof.kind])).toEqual([['x509-dev-1', 'x509']]);
    const chain = proof?.kind === 'x509' ? proof.chain : [];
    expect(chain.map((der) => der.toString('base64'))).toEqual([
      new X509Certificate(leaf.certificatePem).raw.toString('base64'),
      new X509Certificate(intermediate.certificatePem).raw.toString('base64'),
    ]);
  });

  test.each([
    ['a chain no enrollment accepts', Errors.unauthorized(), 5],
    ['throttled while judging the chain', Errors.throttled(undefined, { 'retry-after': '2' }), 3],
  ])('an X.509 CONNECT refused at once: %s gets CONNACK %i, no request reaches the service', async (_name, error, returnCode) => {
    service.onAuthenticate = async () => {
      throw error;
    };
    const leaf = createLeaf(testPki().ca, { commonName: 'x509-refused' });
    const refused = await device('x509-refused', { password: undefined, cert: leaf.certificatePem, key: leaf.privateKeyPem }).then(
      () => undefined,
      (caught: Error & { code?: number }) => caught,
    );
    expect(refused?.code).toBe(returnCode);
    expect(service.registered).toHaveLength(0);
  });
});
