import { Errors } from '@opendps/model';
import {
  addressFor,
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
