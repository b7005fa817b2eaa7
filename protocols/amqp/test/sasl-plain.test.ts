import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createSasToken } from '@opendps/attestation';
import { Errors, generateSymmetricKey, type Logger, type ProvisioningInstance } from '@opendps/model';
import { DpsRegistrationService } from '@opendps/registration';
import { SqliteStore, enrollments } from '@opendps/store';
import { message as rheaMessage } from 'rhea';
import { addressFor, attachLinks, connectClient, ID_SCOPE, plain, registerMessage, ScriptedRegistration, startFrontEnd, type Running } from './helpers';
import { AMQP, frames, RawClient, SASL, SASL_HEADER, type ReadFrame } from './raw-client';

const sas = (registrationId: string, key: string, expiry = Math.floor(Date.now() / 1000) + 3600): string =>
  createSasToken({ resource: addressFor(registrationId), key, keyName: 'registration', expiry });

const plainResponse = (registrationId: string, password: string): Buffer => Buffer.from(`\0${addressFor(registrationId)}\0${password}`);

interface Logged {
  level: string;
  fields: Record<string, unknown>;
  message?: string;
}

/** Every line logged, whatever child logger wrote it. */
function capturingLogger(lines: Logged[], bindings: object = {}): Logger {
  const write = (level: string) => (fields: object, message?: string) =>
    lines.push({ level, fields: { ...bindings, ...fields }, ...(message === undefined ? {} : { message }) });
  return { info: write('info'), warn: write('warn'), error: write('error'), debug: write('debug'), child: (more) => capturingLogger(lines, { ...bindings, ...more }) };
}

/** SASL PLAIN over a raw client up to its outcome; returns the outcome frame. */
async function saslPlain(raw: RawClient, registrationId: string, password: string): Promise<ReadFrame> {
  raw.write(SASL_HEADER);
  expect((await raw.next()).descriptor).toBe(SASL.mechanisms);
  raw.init('PLAIN', plainResponse(registrationId, password));
  const outcome = await raw.next();
  expect(outcome.descriptor).toBe(SASL.outcome);
  return outcome;
}

/** The frames the server still sends until it closes the connection. */
async function framesUntilClosed(raw: RawClient): Promise<ReadFrame[]> {
  const seen: ReadFrame[] = [];
  for (;;) {
    try {
      seen.push(await raw.next());
    } catch {
      return seen;
    }
  }
}

/**
 * SASL PLAIN with the real registration service: the SAS is verified when the connection opens and
 * a bad one is refused as DPS refuses it (docs/device-wire.md §3): SASL outcome ok, our Open carrying
 * `com.microsoft:open-error`, then Close with the same error.
 */
describe('SASL PLAIN: the SAS is verified when the connection opens', () => {
  let dir: string;
  let store: SqliteStore;
  let service: DpsRegistrationService;
  let running: Running;
  const lines: Logged[] = [];
  const key = generateSymmetricKey();

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'opendps-amqp-plain-'));
    store = new SqliteStore(path.join(dir, 'state.db'));
    const instance: ProvisioningInstance = { name: 'default', idScope: ID_SCOPE, serviceHostName: 'localhost', policies: [], linkedHubs: [], allocationPolicy: 'hashed' };
    await enrollments(store, ID_SCOPE).put({
      registrationId: 'plain-dev-1',
      attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: generateSymmetricKey() } },
    });
    // answerWithinMs 0: a register that passes attestation answers 202 at once; no hub is reached.
    service = new DpsRegistrationService({ store, instances: () => [instance], hubs: { connector: () => { throw new Error('no hub in this test'); } }, answerWithinMs: 0 });
    running = await startFrontEnd({ registration: service, logger: capturingLogger(lines) });
  });

  afterAll(async () => {
    await running.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a wrong key: outcome ok, then Open with the open-error and Close, both unauthorized-access with 401002; no begin, attach or register', async () => {
    const register = jest.spyOn(service, 'register');
    const wrong = sas('plain-dev-1', generateSymmetricKey());
    const raw = await RawClient.open(running.port);
    expect((await saslPlain(raw, 'plain-dev-1', wrong)).performative.code).toBe(0);

    raw.open();
    // As the C SDK did against DPS: begin and attach before reading the Close.
    raw.amqp(0, frames.begin({ next_outgoing_id: 0, incoming_window: 2147483647, outgoing_window: 65536 }));
    raw.amqp(0, frames.attach({ name: 'rheaReceiver', handle: 0, role: true, source: { address: addressFor('plain-dev-1') }, target: {} }));
    const answered = await framesUntilClosed(raw);

    expect(answered.map((frame) => frame.descriptor)).toEqual([AMQP.open, AMQP.close]);
    const [open, close] = answered as [ReadFrame, ReadFrame];
    const openError = open.performative.properties['com.microsoft:open-error'];
    const closeError = close.performative.error;
    for (const error of [openError, closeError]) {
      expect(error.condition).toBe('amqp:unauthorized-access');
      expect(JSON.parse(error.description)).toMatchObject({ errorCode: 401002, message: 'Unauthorized.' });
    }
    expect(openError.description).toBe(closeError.description);
    expect(register).not.toHaveBeenCalled();
    register.mockRestore();

    const refusal = lines.find((line) => line.message?.startsWith('SAS refused'));
    expect(refusal).toMatchObject({ level: 'info', fields: { registrationId: 'plain-dev-1', errorCode: 401002, reason: 'Unauthorized.' } });
    const signature = /sig=([^&]+)/.exec(wrong)?.[1] ?? 'no signature';
    expect(JSON.stringify(lines)).not.toContain(signature);
  });

  test('an expired token and an unknown registration are refused at Open with their own codes', async () => {
    for (const [registrationId, password, errorCode] of [
      ['plain-dev-1', sas('plain-dev-1', key, 1000), 401003],
      ['nobody', sas('nobody', generateSymmetricKey()), 401002],
    ] as const) {
      const { connection, gone } = await connectClient(running.port, { username: addressFor(registrationId), password });
      await gone;
      const error = connection.error as { condition?: string; description?: string } | undefined;
      expect(error?.condition).toBe('amqp:unauthorized-access');
      expect(JSON.parse(error?.description ?? '{}')).toMatchObject({ errorCode });
      // rhea keeps the peer's Open: the same error as its property
      const properties = (connection as unknown as { remote: { open: { properties?: Record<string, { description?: string }> } } }).remote.open.properties;
      expect(properties?.['com.microsoft:open-error']?.description).toBe(error?.description);
    }
  });

  test('the right key opens, attaches and registers (202)', async () => {
    const { connection, error } = await connectClient(running.port, plain('plain-dev-1', sas('plain-dev-1', key)));
    expect(error).toBeUndefined();
    expect((connection as unknown as { remote: { open: { properties?: unknown } } }).remote.open.properties).toBeUndefined();
    const links = await attachLinks(connection, addressFor('plain-dev-1'));
    const answer = await links.request(registerMessage('plain-dev-1', 'good-1'));
    expect(answer.outcome).toBe('accepted');
    expect(JSON.parse((answer.response?.body as { content: Buffer }).content.toString('utf8'))).toMatchObject({ status: 'assigning' });
    links.close();
  });
});

describe('SASL PLAIN: no verdict at open (throttled, store down) is left to the requests', () => {
  let running: Running;
  const service = new ScriptedRegistration();

  beforeAll(async () => {
    running = await startFrontEnd({ registration: service });
  });
  afterAll(() => running.close());

  test.each([
    ['throttled', () => Errors.throttled(undefined, { 'retry-after': '3' }), 'com.microsoft:device-container-throttled'],
    ['the store failing', () => new Error('the store is down'), 'amqp:internal-error'],
  ])('%s: the connection opens, and the register is rejected with the condition the SDK retries', async (_name, failure, condition) => {
    const registrationId = `busy-${service.authenticated.length}`;
    service.onAuthenticate = async () => {
      throw failure();
    };
    service.onRegister = async () => {
      throw failure();
    };
    const { connection, error } = await connectClient(running.port, plain(registrationId));
    expect(error).toBeUndefined();
    expect(service.authenticated.at(-1)).toMatchObject({ idScope: ID_SCOPE, registrationId, proof: { kind: 'sas' }, transport: 'amqp' });
    const links = await attachLinks(connection, addressFor(registrationId));
    const answer = await links.request(registerMessage(registrationId, 'busy'));
    expect(answer.outcome).toBe('rejected');
    expect(answer.error?.condition).toBe(condition);
    links.close();
  });

  test('a token refused at open never reaches register, even when the client sends a request at once', async () => {
    service.onAuthenticate = async () => {
      throw Errors.invalidSignature();
    };
    const before = service.registered.length;
    const raw = await RawClient.open(running.port);
    expect((await saslPlain(raw, 'eager-dev', 'SharedAccessSignature sr=x&sig=y&se=1&skn=registration')).performative.code).toBe(0);
    raw.open();
    raw.amqp(0, frames.begin({ next_outgoing_id: 0, incoming_window: 2147483647, outgoing_window: 65536 }));
    raw.amqp(0, frames.attach({ name: 'rheaSender', handle: 0, role: false, source: {}, target: { address: addressFor('eager-dev') }, initial_delivery_count: 0 }));
    const body = rheaMessage.encode(registerMessage('eager-dev', 'eager'));
    raw.write(frames.write_frame(frames.amqp_frame(0, frames.transfer({ handle: 0, delivery_id: 0, delivery_tag: Buffer.from([0]), message_format: 0 }), body)));
    expect((await framesUntilClosed(raw)).map((frame) => frame.descriptor)).toEqual([AMQP.open, AMQP.close]);
    expect(service.registered.length).toBe(before);
  });
});
