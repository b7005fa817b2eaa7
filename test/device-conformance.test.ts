/**
 * The same register requests, valid and invalid, over MQTT, MQTT/WS, AMQP, AMQP/WS and HTTPS get
 * the same status and error code: one decoder of device requests serves every transport. Lean
 * clients (mqtt.js, rhea, node:https) send the forms the SDKs cannot (no body, garbage, a bad
 * api-version), each in its transport's own place (MQTT username and topic, AMQP link properties
 * and application properties, HTTPS query).
 */
import { randomUUID } from 'node:crypto';
import { generateSymmetricKey, validateIndividualEnrollment, type Logger } from '@opendps/model';
import { enrollments } from '@opendps/store';
import mqtt from 'mqtt';
import { create_container, message as amqpMessage, websocket_connect, type Connection, type ConnectionOptions, type EventContext } from 'rhea';
import WebSocket from 'ws';
import { deviceSas, portOf, rawHttps } from './support/devices';
import { startOpenDps, type OpenDps } from './support/opendps';

type Transport = 'mqtt' | 'mqtt-ws' | 'amqp' | 'amqp-ws' | 'https';
const TRANSPORTS: readonly Transport[] = ['mqtt', 'mqtt-ws', 'amqp', 'amqp-ws', 'https'];

/** One register request, in transport-neutral terms. */
interface Request {
  /** The registration the request is addressed to (MQTT username, AMQP link address and SASL, HTTPS path). */
  registrationId: string;
  /** The key the SAS is signed with. */
  key: string;
  /** The register body as sent; undefined sends none. */
  body: string | undefined;
  apiVersion: string;
  /** Sent as each transport carries it: HTTPS query, AMQP property, MQTT body field. */
  forceRegistration?: boolean;
}

/** What came back: the status (HTTP style) and the DPS errorCode, or the body's status on success. */
interface Answer {
  status: number;
  errorCode?: number;
  registrationStatus?: string;
}

/** Every line the server logs, with its bindings. */
const lines: Array<Record<string, unknown>> = [];
function recorder(bindings: object = {}): Logger {
  const record = (fields: object, message?: string) => lines.push({ ...bindings, ...fields, message });
  return { info: record, warn: record, error: record, debug: record, child: (more) => recorder({ ...bindings, ...more }) };
}

const key = generateSymmetricKey();
let dps: OpenDps;
let idScope: string;
let ports: { mqtt: number; amqp: number; https: number };

beforeAll(async () => {
  dps = await startOpenDps({ logger: recorder() });
  idScope = dps.connection.idScope;
  ports = { mqtt: portOf(dps.connection.endpoints.mqtt), amqp: portOf(dps.connection.endpoints.amqp), https: portOf(dps.connection.endpoints.https) };
  for (const registrationId of ['conf-dev', 'conf-case']) {
    await enrollments(dps.server.store, idScope).put(
      validateIndividualEnrollment({ registrationId, attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: generateSymmetricKey() } } }),
    );
  }
});

afterAll(() => dps?.stop());

function parse(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function answerOf(status: number, body: Record<string, unknown> | undefined): Answer {
  if (status >= 300) return { status, errorCode: Number(body?.errorCode) };
  return { status, registrationStatus: String(body?.status) };
}

/** A body JSON with forceRegistration added, for MQTT (its only place). */
function withForce(request: Request): string | undefined {
  if (request.forceRegistration === undefined) return request.body;
  const body = request.body === undefined || request.body === '' ? {} : (JSON.parse(request.body) as object);
  return JSON.stringify({ ...body, forceRegistration: request.forceRegistration });
}

async function overMqtt(request: Request, webSocket: boolean): Promise<Answer> {
  const sas = deviceSas(idScope, request.registrationId, request.key);
  const client = await mqtt.connectAsync({
    ...(webSocket
      ? { protocol: 'wss' as const, host: 'localhost', port: ports.https, path: '/$iothub/websocket', wsOptions: { ca: dps.ca } }
      : { protocol: 'mqtts' as const, host: 'localhost', port: ports.mqtt }),
    ca: dps.ca,
    protocolVersion: 4,
    clientId: request.registrationId,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
    username: `${idScope}/registrations/${request.registrationId}/api-version=${request.apiVersion}&ClientVersion=opendps-conformance`,
    password: sas,
  });
  try {
    await client.subscribeAsync('$dps/registrations/res/#', { qos: 1 });
    const rid = randomUUID();
    const answered = new Promise<Answer>((resolve) => {
      client.on('message', (topic, payload) => {
        const match = /^\$dps\/registrations\/res\/(\d+)\/\?\$rid=([^&]*)/.exec(topic);
        if (match?.[2] === rid) resolve(answerOf(Number(match[1]), parse(payload.toString('ascii'))));
      });
    });
    await client.publishAsync(`$dps/registrations/PUT/iotdps-register/?$rid=${rid}`, withForce(request) ?? '', { qos: 1 });
    return await answered;
  } finally {
    await client.endAsync(true);
  }
}

/** An AMQP error whose description is the DPS error body: its code, and the status it encodes. */
function amqpError(error: unknown): Answer {
  const description = (error as { description?: unknown } | undefined)?.description;
  const body = typeof description === 'string' ? parse(description) : undefined;
  const errorCode = Number(body?.errorCode);
  return { status: Math.floor(errorCode / 1000), errorCode };
}

async function overAmqp(request: Request, webSocket: boolean): Promise<Answer> {
  const container = create_container({ id: `conformance-${randomUUID()}` });
  const address = `${idScope}/registrations/${request.registrationId}`;
  const credentials = { username: address, password: deviceSas(idScope, request.registrationId, request.key), reconnect: false as const };
  const options: ConnectionOptions = webSocket
    ? // rhea's typings want host and port from connection_details; its WebSocket factory supplies the URL instead
      ({ ...credentials, connection_details: websocket_connect(WebSocket)(`wss://localhost:${ports.https}/$iothub/websocket`, ['AMQPWSB10'], { ca: dps.ca }) } as unknown as ConnectionOptions)
    : { ...credentials, host: 'localhost', port: ports.amqp, transport: 'tls', ca: dps.ca };
  const connection: Connection = container.connect(options);
  // A refused SAS: our Open arrives (carrying the error), then Close with it (docs/device-wire.md §3).
  const refused = new Promise<Answer>((resolve) => {
    for (const event of ['connection_close', 'connection_error', 'disconnected'] as const) {
      connection.once(event, (context: EventContext) => resolve(amqpError(context.connection.error)));
    }
  });
  try {
    return await Promise.race([refused, exchange(connection, request, address)]);
  } finally {
    connection.close();
  }
}

async function exchange(connection: Connection, request: Request, address: string): Promise<Answer> {
  const properties = { 'com.microsoft:api-version': request.apiVersion };
  const receiver = connection.open_receiver({ source: { address }, properties });
  const sender = connection.open_sender({ target: { address }, properties });
  await new Promise((resolve) => sender.once('sendable', resolve));
  const correlationId = randomUUID();
  return await new Promise<Answer>((resolve) => {
    receiver.on('message', (context: EventContext) => {
      if (context.message?.correlation_id !== correlationId) return;
      const content = (context.message.body as { content: Buffer }).content;
      const body = parse(content.toString('utf8'));
      resolve(answerOf(body?.status === 'assigning' ? 202 : 200, body));
    });
    sender.on('rejected', (context: EventContext) => resolve(amqpError(context.delivery?.remote_state?.error)));
    sender.send({
      correlation_id: correlationId,
      application_properties: {
        'iotdps-operation-type': 'iotdps-register',
        ...(request.forceRegistration === undefined ? {} : { 'iotdps-forceRegistration': request.forceRegistration }),
      },
      body: amqpMessage.data_section(Buffer.from(request.body ?? '', 'utf8')),
    });
  });
}

async function overHttps(request: Request): Promise<Answer> {
  const force = request.forceRegistration === undefined ? '' : `&forceRegistration=${request.forceRegistration}`;
  const response = await rawHttps({
    port: ports.https,
    ca: dps.ca,
    method: 'PUT',
    path: `/${idScope}/registrations/${encodeURIComponent(request.registrationId)}/register?api-version=${encodeURIComponent(request.apiVersion)}${force}`,
    headers: { accept: 'application/json', 'content-type': 'application/json; charset=utf-8', authorization: deviceSas(idScope, request.registrationId, request.key) },
    ...(request.body === undefined ? {} : { body: request.body }),
  });
  return answerOf(response.status, response.json);
}

function send(transport: Transport, request: Request): Promise<Answer> {
  switch (transport) {
    case 'mqtt':
      return overMqtt(request, false);
    case 'mqtt-ws':
      return overMqtt(request, true);
    case 'amqp':
      return overAmqp(request, false);
    case 'amqp-ws':
      return overAmqp(request, true);
    case 'https':
      return overHttps(request);
  }
}

const valid = (overrides: Partial<Request> = {}): Request => ({
  registrationId: 'conf-dev',
  key,
  body: JSON.stringify({ registrationId: 'conf-dev' }),
  apiVersion: '2021-06-01',
  ...overrides,
});

const ASSIGNED: Answer = { status: 200, registrationStatus: 'assigned' };

const CASES: ReadonlyArray<{ name: string; request: () => Request; expected: Answer }> = [
  { name: 'a valid register', request: () => valid(), expected: ASSIGNED },
  { name: 'a wrong key', request: () => valid({ key: generateSymmetricKey() }), expected: { status: 401, errorCode: 401002 } },
  {
    name: 'an unknown registration id',
    request: () => valid({ registrationId: 'conf-nobody', body: JSON.stringify({ registrationId: 'conf-nobody' }) }),
    expected: { status: 401, errorCode: 401002 },
  },
  {
    name: 'the registration id in another case (address and body)',
    request: () => valid({ registrationId: 'CONF-Case', body: JSON.stringify({ registrationId: 'conf-CASE' }) }),
    expected: ASSIGNED,
  },
  { name: 'another registration id in the body', request: () => valid({ body: JSON.stringify({ registrationId: 'conf-case' }) }), expected: { status: 400, errorCode: 400009 } },
  { name: 'an empty body', request: () => valid({ body: '' }), expected: ASSIGNED },
  { name: 'an empty body with a wrong key (attestation decides)', request: () => valid({ body: '', key: generateSymmetricKey() }), expected: { status: 401, errorCode: 401002 } },
  { name: 'a body that is not JSON', request: () => valid({ body: '{"registrationId": ' }), expected: { status: 400, errorCode: 400001 } },
  { name: 'a body that is not an object', request: () => valid({ body: '[1,2]' }), expected: { status: 400, errorCode: 400002 } },
  { name: 'an oversized payload', request: () => valid({ body: JSON.stringify({ registrationId: 'conf-dev', payload: 'x'.repeat(100_000) }) }), expected: { status: 413, errorCode: 413001 } },
  { name: 'a bad api-version', request: () => valid({ apiVersion: 'banana' }), expected: { status: 400, errorCode: 400002 } },
  { name: 'forceRegistration', request: () => valid({ forceRegistration: true }), expected: ASSIGNED },
  { name: 'a payload', request: () => valid({ body: JSON.stringify({ registrationId: 'conf-dev', payload: { modelId: 'dtmi:x;1', fw: [1, 2] } }) }), expected: ASSIGNED },
];

describe.each(CASES)('$name', ({ request, expected }) => {
  test.each(TRANSPORTS)('over %s', async (transport) => {
    const from = lines.length;
    const sent = request();
    expect(await send(transport, sent)).toEqual(expected);
    // forceRegistration has no documented effect in DPS: it reaches the pipeline, which logs it
    if (sent.forceRegistration) expect(lines.slice(from).some((line) => line.forceRegistration === true)).toBe(true);
    if (expected.errorCode !== undefined) {
      // every refusal leaves a line naming its code and its reason
      const refusal = lines.slice(from).find((line) => line.errorCode === expected.errorCode && typeof line.reason === 'string');
      expect(refusal).toBeDefined();
    }
  });
});
