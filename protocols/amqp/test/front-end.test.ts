import { X509Certificate } from 'node:crypto';
import { Errors } from '@opendps/model';
import { createLeaf } from '@opendps/pki';
import { message, type Message } from 'rhea';
import {
  addressFor,
  testPki,
  type Answer,
  assigned,
  attachLinks,
  connectClient,
  ID_SCOPE,
  operationIdFor,
  plain,
  pollMessage,
  registerMessage,
  sasFor,
  ScriptedRegistration,
  startFrontEnd,
  type Running,
} from './helpers';
import { AMQP_HEADER, RawClient, SASL, SASL_HEADER } from './raw-client';

describe('DPS over AMQP with a rhea client', () => {
  let running: Running;
  const service = new ScriptedRegistration();

  beforeAll(async () => {
    running = await startFrontEnd({ registration: service });
  });
  afterAll(() => running.close());

  test('SASL PLAIN, register (202) then poll (200): correlation ids, Data-section JSON, both retry-after keys', async () => {
    const { connection, error } = await connectClient(running.port, plain('amqp-dev-1'));
    expect(error).toBeUndefined();
    const links = await attachLinks(connection, addressFor('amqp-dev-1'));

    const registered = await links.request(registerMessage('amqp-dev-1', 'c-1', { payload: { fw: '1.0' } }));
    expect(registered.outcome).toBe('accepted');
    const response = registered.response!;
    expect(response.correlation_id).toBe('c-1');
    expect(response.body.typecode).toBe(0x75);
    expect(JSON.parse(response.body.content.toString('utf8'))).toMatchObject({ operationId: operationIdFor('amqp-dev-1'), status: 'assigning' });
    expect(response.application_properties).toEqual({ 'retry-after': 3, 'Retry-After': 3 });
    expect(service.registered.at(-1)).toMatchObject({
      idScope: ID_SCOPE,
      registrationId: 'amqp-dev-1',
      transport: 'amqp',
      apiVersion: '2019-03-31',
      forceRegistration: false,
      payload: { fw: '1.0' },
      proof: { kind: 'sas', token: sasFor('amqp-dev-1') },
    });
    expect(service.registered.at(-1)?.clientAddress).toMatch(/127\.0\.0\.1$/);

    const polled = await links.request(pollMessage(operationIdFor('amqp-dev-1'), 'c-2'));
    expect(polled.response?.correlation_id).toBe('c-2');
    expect(JSON.parse(polled.response!.body.content.toString('utf8'))).toEqual(assigned('amqp-dev-1', operationIdFor('amqp-dev-1')).body);
    expect(polled.response?.application_properties).toBeUndefined();
    links.close();
  });
});

describe('requests and their coded errors', () => {
  let running: Running;
  const service = new ScriptedRegistration();

  beforeAll(async () => {
    running = await startFrontEnd({ registration: service, maxMessageBytes: 1024 });
  });
  afterAll(() => running.close());

  async function device(registrationId: string) {
    const { connection, error, gone } = await connectClient(running.port, plain(registrationId));
    expect(error).toBeUndefined();
    return { connection, gone, links: await attachLinks(connection, addressFor(registrationId)) };
  }

  test('the service refusing: 401 unauthorized-access, 404 not-found, with the DPS error body as description', async () => {
    const { links } = await device('err-dev-1');
    service.onRegister = async () => {
      throw Errors.invalidSignature();
    };
    const refused = await links.request(registerMessage('err-dev-1', 'e-1'));
    expect(refused.outcome).toBe('rejected');
    expect(refused.error?.condition).toBe('amqp:unauthorized-access');
    expect(JSON.parse(refused.error!.description)).toMatchObject({ errorCode: 401002, message: 'Unauthorized.' });
    expect(refused.response).toBeUndefined();

    service.onOperationStatus = async () => {
      throw Errors.operationNotFound();
    };
    const missing = await links.request(pollMessage('nope', 'e-2'));
    expect(missing.error?.condition).toBe('amqp:not-found');
    expect(JSON.parse(missing.error!.description)).toMatchObject({ errorCode: 404204 });
    links.close();
  });

  test('429 and 5xx are the two conditions the SDK retries, with info retry-after', async () => {
    const { links } = await device('err-dev-2');
    service.onRegister = async () => {
      throw Errors.throttled(undefined, { 'retry-after': '7' });
    };
    const throttled = await links.request(registerMessage('err-dev-2', 't-1'));
    expect(throttled.error).toMatchObject({ condition: 'com.microsoft:device-container-throttled', info: { 'retry-after': 7 } });
    expect(JSON.parse(throttled.error!.description)).toMatchObject({ errorCode: 429001 });

    service.onRegister = async () => {
      throw new Error('the store is down');
    };
    const failed = await links.request(registerMessage('err-dev-2', 't-2'));
    expect(failed.error).toMatchObject({ condition: 'amqp:internal-error', info: { 'retry-after': 2 } });
    // an unexpected failure never leaks its text
    expect(JSON.parse(failed.error!.description)).toMatchObject({ errorCode: 500001, message: 'Internal server error.' });
    links.close();
  });

  test('malformed requests: unknown operation, bad JSON, another registrationId, too large', async () => {
    const { links } = await device('err-dev-3');
    service.onRegister = async (request) => assigned(request.registrationId, 'op');
    const expectArgument = async (answer: Promise<Answer>, errorCode: number, condition = 'com.microsoft:argument-error') => {
      const { outcome, error } = await answer;
      expect(outcome).toBe('rejected');
      expect(error?.condition).toBe(condition);
      expect(JSON.parse(error!.description)).toMatchObject({ errorCode });
    };
    await expectArgument(links.request(registerMessage('err-dev-3', 'm-1', {}, { 'iotdps-operation-type': 'iotdps-delete' })), 400002);
    await expectArgument(links.request({ ...registerMessage('err-dev-3', 'm-2'), body: message.data_section(Buffer.from('{nope')) }), 400001);
    await expectArgument(links.request(registerMessage('someone-else', 'm-3')), 400009);
    await expectArgument(links.request(registerMessage('err-dev-3', 'm-4', {}, { 'iotdps-forceRegistration': 'yes' })), 400002);
    await expectArgument(links.request(registerMessage('err-dev-3', 'm-5', { payload: 'x'.repeat(2000) })), 413001, 'amqp:link:message-size-exceeded');
    expect(service.registered.filter((request) => request.registrationId === 'err-dev-3')).toHaveLength(0);

    // ... and the connection still serves; the C SDK's string forceRegistration is understood.
    const ok = await links.request(registerMessage('err-dev-3', 'm-6', {}, { 'iotdps-forceRegistration': 'true' }));
    expect(ok.outcome).toBe('accepted');
    expect(service.registered.at(-1)).toMatchObject({ registrationId: 'err-dev-3', forceRegistration: true });
    links.close();
  });

  test('as the C SDK speaks it: amqps://{host}/ link addresses, no properties section, max-message-size on our attaches', async () => {
    const { connection, error } = await connectClient(running.port, plain('c-dev-1'));
    expect(error).toBeUndefined();
    const links = await attachLinks(connection, `amqps://dps.example.net/${addressFor('c-dev-1')}`);
    service.onRegister = async (request) => assigned(request.registrationId, 'op-c');
    const { correlation_id: _dropped, ...bare } = registerMessage('c-dev-1', 'unused');
    const answer = await links.request(bare as Message);
    expect(answer.outcome).toBe('accepted');
    expect(answer.response?.correlation_id).toBeUndefined();
    expect(JSON.parse(answer.response!.body.content.toString('utf8'))).toMatchObject({ operationId: 'op-c', status: 'assigned' });
    expect(service.registered.at(-1)).toMatchObject({ idScope: ID_SCOPE, registrationId: 'c-dev-1' });
    // the request's message_id stands in for a missing correlation_id
    const byMessageId = await links.request({ ...bare, message_id: 'mid-7' } as Message);
    expect(byMessageId.response?.correlation_id).toBe('mid-7');
    const attaches = links.attaches();
    expect(attaches).toHaveLength(2);
    for (const attach of attaches) expect(Number(attach?.max_message_size)).toBeGreaterThan(0);
    links.close();
  });

  test('a link address naming another registration is refused, with or without the amqps:// prefix', async () => {
    const { connection } = await connectClient(running.port, plain('c-dev-2'));
    await expect(attachLinks(connection, `amqps://localhost/${addressFor('c-dev-3')}`)).rejects.toThrow(/receiver refused/);
    connection.close();
  });

  test('a delivery far beyond the limit closes that connection only', async () => {
    const { gone, links } = await device('big-dev-1');
    void links.request(registerMessage('big-dev-1', 'b-1', { payload: 'x'.repeat(40_000) }));
    await gone;
    const { links: other } = await device('big-dev-2');
    expect((await other.request(registerMessage('big-dev-2', 'b-2'))).outcome).toBe('accepted');
    other.close();
  });

  test('iotdps-get-registration answers with the registration state', async () => {
    const { links } = await device('err-dev-4');
    const answer = await links.request({ ...pollMessage('x', 'g-1'), application_properties: { 'iotdps-operation-type': 'iotdps-get-registration' } });
    expect(JSON.parse(answer.response!.body.content.toString('utf8'))).toMatchObject({ registrationId: 'err-dev-4', status: 'assigned' });
    expect(service.looked.at(-1)).toMatchObject({ idScope: ID_SCOPE, registrationId: 'err-dev-4', proof: { kind: 'sas' } });
    links.close();
  });
});

describe('authentication: SASL PLAIN, none, ANONYMOUS, unknown mechanisms, link addresses', () => {
  let running: Running;
  const service = new ScriptedRegistration();
  const leaf = createLeaf(testPki().ca, { commonName: 'x509-dev-1' });

  beforeAll(async () => {
    running = await startFrontEnd({ registration: service, connectTimeoutMs: 500 });
  });
  afterAll(() => running.close());

  async function stillServing(): Promise<void> {
    const { connection, error } = await connectClient(running.port, plain('alive-dev'));
    expect(error).toBeUndefined();
    const links = await attachLinks(connection, addressFor('alive-dev'));
    expect((await links.request(registerMessage('alive-dev', 'alive'))).outcome).toBe('accepted');
    links.close();
  }

  test('no SASL layer after TLS with a client certificate: X.509, named by the link address (docs/device-wire.md, trap 10)', async () => {
    const { connection, error } = await connectClient(running.port, { cert: leaf.certificatePem, key: leaf.privateKeyPem });
    expect(error).toBeUndefined();
    const links = await attachLinks(connection, addressFor('x509-dev-1'));
    expect((await links.request(registerMessage('x509-dev-1', 'x-1'))).outcome).toBe('accepted');
    const request = service.registered.at(-1)!;
    expect(request).toMatchObject({ idScope: ID_SCOPE, registrationId: 'x509-dev-1', proof: { kind: 'x509' } });
    const chain = request.proof.kind === 'x509' ? request.proof.chain : [];
    expect(chain[0]?.equals(new X509Certificate(leaf.certificatePem).raw)).toBe(true);
    links.close();
  });

  test('ANONYMOUS with a client certificate is X.509 too; without one it is refused with outcome auth', async () => {
    const { connection, error } = await connectClient(running.port, { username: 'anonymous', cert: leaf.certificatePem, key: leaf.privateKeyPem });
    expect(error).toBeUndefined();
    const links = await attachLinks(connection, addressFor('x509-dev-1'));
    expect((await links.request(registerMessage('x509-dev-1', 'x-2'))).outcome).toBe('accepted');
    expect(service.registered.at(-1)?.proof.kind).toBe('x509');
    links.close();

    const raw = await RawClient.open(running.port);
    raw.write(SASL_HEADER);
    raw.init('ANONYMOUS', Buffer.from('anonymous'));
    const outcome = await raw.next();
    expect(outcome.descriptor === SASL.mechanisms ? (await raw.next()).performative.code : outcome.performative.code).toBe(1);
    await raw.closed();
  });

  test('neither SASL nor a client certificate: the connection is closed unauthorized', async () => {
    // rhea answers the Open before our Close arrives: the refusal is the Close's error.
    const { connection, gone } = await connectClient(running.port, {});
    await gone;
    expect(connection.error).toMatchObject({ condition: 'amqp:unauthorized-access' });
    expect(JSON.parse((connection.error as { description: string }).description)).toMatchObject({ errorCode: 401000 });
  });

  test('an unknown or unoffered mechanism gets outcome auth and the connection is closed; the server carries on', async () => {
    const raw = await RawClient.open(running.port);
    raw.write(SASL_HEADER);
    const mechanisms = await raw.next();
    expect(mechanisms.descriptor).toBe(SASL.mechanisms);
    // no TpmChallenger configured: TPM is not offered
    expect([mechanisms.performative.sasl_server_mechanisms].flat().map(String).sort()).toEqual(['ANONYMOUS', 'PLAIN']);
    raw.init('TPM', Buffer.from([0, 0x41, 0, 0x42, 0, 1, 2]));
    const outcome = await raw.next();
    expect(outcome).toMatchObject({ descriptor: SASL.outcome, performative: { code: 1 } });
    expect(raw.headers[0]?.equals(SASL_HEADER)).toBe(true);
    await raw.closed();

    const constructorName = await RawClient.open(running.port);
    constructorName.write(SASL_HEADER);
    constructorName.init('constructor');
    await constructorName.next();
    expect((await constructorName.next()).performative.code).toBe(1);
    await constructorName.closed();
    await stillServing();
  });

  test('a malformed PLAIN response or username gets outcome auth', async () => {
    for (const response of [Buffer.from('no-separators'), Buffer.from(`\0not-an-address\0${sasFor('x')}`), Buffer.from(`\0${addressFor('x')}\0`)]) {
      const raw = await RawClient.open(running.port);
      raw.write(SASL_HEADER);
      await raw.next();
      raw.init('PLAIN', response);
      expect((await raw.next()).performative.code).toBe(1);
      await raw.closed();
    }
  });

  test('garbage, a huge frame size, a tiny frame size and a SASL response out of turn close one connection each', async () => {
    const inputs = [
      Buffer.from('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'),
      Buffer.concat([SASL_HEADER, Buffer.from([0xff, 0xff, 0xff, 0xf0, 2, 1, 0, 0])]),
      Buffer.concat([SASL_HEADER, Buffer.from([0, 0, 0, 3, 2, 1, 0, 0])]),
      Buffer.concat([AMQP_HEADER, Buffer.from([0, 0, 0, 12, 2, 0, 0, 0, 0x00, 0x53, 0x10, 0x99])]),
    ];
    for (const bytes of inputs) {
      const raw = await RawClient.open(running.port);
      raw.write(bytes);
      await raw.closed();
    }
    const outOfTurn = await RawClient.open(running.port);
    outOfTurn.write(SASL_HEADER);
    await outOfTurn.next();
    outOfTurn.respond(Buffer.from([0]));
    await outOfTurn.closed();
    await stillServing();
  });

  test('a connection that never opens AMQP is closed after connectTimeoutMs', async () => {
    const raw = await RawClient.open(running.port);
    const started = Date.now();
    await raw.closed(3000);
    expect(Date.now() - started).toBeLessThan(2500);
  });

  test('links must name the authenticated registration', async () => {
    const { connection } = await connectClient(running.port, plain('addr-dev-1'));
    await expect(attachLinks(connection, addressFor('addr-dev-2'))).rejects.toThrow(/amqp:unauthorized-access/);
    await expect(attachLinks(connection, 'addr-dev-1')).rejects.toThrow(/com.microsoft:argument-error/);
    const links = await attachLinks(connection, addressFor('ADDR-DEV-1'));
    expect((await links.request(registerMessage('addr-dev-1', 'a-1'))).outcome).toBe('accepted');
    links.close();
  });
});
