import { Errors } from '@opendps/model';
import { activationChallenges, parseTpmInit, TPM_MAX_CHUNKS, type TpmChallenger, type TpmChallengeRequest } from '../src';
import { addressFor, attachLinks, connectClient, ID_SCOPE, registerMessage, ScriptedRegistration, startFrontEnd, type Running } from './helpers';
import { RawClient, SASL, SASL_HEADER } from './raw-client';

/** Raw TPM2B_PUBLIC-like keys: size-prefixed, with zero bytes inside (the init splits on the first two NULs only). */
const EK = Buffer.concat([Buffer.from([0x01, 0x3a, 0x00, 0x01, 0x00, 0x0b]), Buffer.alloc(310, 0x5a)]);
const SRK = Buffer.concat([Buffer.from([0x01, 0x1a, 0x00, 0x01, 0x00, 0x0b]), Buffer.alloc(278, 0x3c)]);
/** ~800 bytes like a real activation blob (docs/tpm.md §3), every byte distinct by position. */
const BLOB = Buffer.from(Array.from({ length: 812 }, (_, i) => (i * 7 + 3) % 256));
const SAS = `SharedAccessSignature sr=${ID_SCOPE}%2Fregistrations%2Ftpm-dev-1&sig=abc%3D&se=1795684797&skn=registration`;

const tpmInit = (registrationId: string, endorsementKey = EK): Buffer =>
  Buffer.concat([Buffer.from([0]), Buffer.from(ID_SCOPE), Buffer.from([0]), Buffer.from(registrationId), Buffer.from([0]), endorsementKey]);
const zeroThen = (data: Buffer | string): Buffer => Buffer.concat([Buffer.from([0]), Buffer.from(data)]);

/** A test-only challenger: a fixed blob, or the failure a script asks for; records what it was asked. */
class FixedChallenger implements TpmChallenger {
  readonly requests: TpmChallengeRequest[] = [];
  failure: Error | undefined;
  async challenge(request: TpmChallengeRequest): Promise<Buffer> {
    this.requests.push(request);
    if (this.failure) throw this.failure;
    return BLOB;
  }
}

describe('activation blob chunking (docs/device-wire.md, trap 11)', () => {
  test.each([1, 2, 399, 400, 401, 812, 1600, 1601, 5000])('%i bytes: at most 4 challenges, never 1 byte long, control bits and seq', (length) => {
    const blob = Buffer.from(Array.from({ length }, (_, i) => i % 251));
    const challenges = activationChallenges(blob);
    expect(challenges.length).toBeGreaterThanOrEqual(1);
    expect(challenges.length).toBeLessThanOrEqual(TPM_MAX_CHUNKS);
    challenges.forEach((challenge, seq) => {
      const last = seq === challenges.length - 1;
      expect(challenge.length).toBeGreaterThan(1);
      expect(challenge[0]).toBe(0x80 | (last ? 0x40 : 0) | seq);
    });
    expect(Buffer.concat(challenges.map((challenge) => challenge.subarray(1))).equals(blob)).toBe(true);
    if (length <= 1600) expect(Math.max(...challenges.map((challenge) => challenge.length))).toBeLessThanOrEqual(401);
  });

  test('an empty blob is refused', () => {
    expect(() => activationChallenges(Buffer.alloc(0))).toThrow();
  });

  test('the init splits idScope and registrationId at the first two NULs and keeps the EK whole', () => {
    expect(parseTpmInit(tpmInit('tpm-dev-1'))).toEqual({ idScope: ID_SCOPE, registrationId: 'tpm-dev-1', endorsementKey: EK });
    expect(parseTpmInit(Buffer.from('no-leading-zero'))).toBeUndefined();
    expect(parseTpmInit(Buffer.from([0, 0x41, 0, 0x42, 0]))).toBeUndefined(); // no EK
    expect(parseTpmInit(Buffer.from([0, 0x41, 0, 0x42]))).toBeUndefined();
  });
});

describe('the SASL mechanism TPM with a hand-written client', () => {
  let running: Running;
  const service = new ScriptedRegistration();
  const challenger = new FixedChallenger();

  beforeAll(async () => {
    running = await startFrontEnd({ registration: service, tpm: challenger });
  });
  afterAll(() => running.close());
  afterEach(() => {
    challenger.failure = undefined;
  });

  async function initiated(registrationId = 'tpm-dev-1', init = tpmInit(registrationId)): Promise<RawClient> {
    const raw = await RawClient.open(running.port);
    raw.write(SASL_HEADER);
    const mechanisms = await raw.next();
    expect([mechanisms.performative.sasl_server_mechanisms].flat().map(String)).toContain('TPM');
    raw.init('TPM', init);
    return raw;
  }

  test('init, the 1-byte 0x00 challenge, the SRK, the blob in chunks, the SAS, outcome ok', async () => {
    const raw = await initiated();
    const first = await raw.next();
    expect(first.descriptor).toBe(SASL.challenge);
    expect(first.performative.challenge).toEqual(Buffer.from([0x00]));
    raw.respond(zeroThen(SRK));

    const chunks: Buffer[] = [];
    for (;;) {
      const frame = await raw.next();
      expect(frame.descriptor).toBe(SASL.challenge);
      const challenge: Buffer = frame.performative.challenge;
      expect(challenge.length).toBeGreaterThan(1);
      expect(challenge[0]! & 0x80).toBe(0x80);
      expect(challenge[0]! & 0x03).toBe(chunks.length & 0x03);
      chunks.push(challenge);
      if (challenge[0]! & 0x40) break;
      raw.respond(Buffer.from([0x00]));
    }
    expect(chunks.length).toBeGreaterThanOrEqual(2);
    expect(chunks.length).toBeLessThanOrEqual(4);
    expect(Buffer.concat(chunks.map((chunk) => chunk.subarray(1))).equals(BLOB)).toBe(true);
    expect(challenger.requests.at(-1)).toEqual({ idScope: ID_SCOPE, registrationId: 'tpm-dev-1', endorsementKey: EK, storageRootKey: SRK });

    raw.respond(zeroThen(SAS));
    const outcome = await raw.next();
    expect(outcome).toMatchObject({ descriptor: SASL.outcome, performative: { code: 0 } });
    raw.destroy();
  });

  test('a rhea client with the TPM mechanism registers; the service gets the TPM proof with the SAS', async () => {
    const challenges: Buffer[] = [];
    const mechanism = {
      start: (callback: (error: unknown, response: Buffer) => void) => callback(undefined, tpmInit('tpm-dev-2')),
      step: (challenge: Buffer, callback: (error: unknown, response: Buffer) => void) => {
        challenges.push(Buffer.from(challenge));
        // Node's rule (PA dist/sasl_tpm.js): a 1-byte challenge asks for the SRK; the 0x40 bit ends the blob.
        if (challenge.length === 1) return callback(undefined, zeroThen(SRK));
        callback(undefined, challenge[0]! & 0x40 ? zeroThen(SAS) : Buffer.from([0]));
      },
    };
    const { connection, error } = await connectClient(running.port, { sasl_mechanisms: { TPM: mechanism } } as never);
    expect(error).toBeUndefined();
    expect(challenges[0]).toEqual(Buffer.from([0]));
    expect(Buffer.concat(challenges.slice(1).map((challenge) => challenge.subarray(1))).equals(BLOB)).toBe(true);

    const links = await attachLinks(connection, addressFor('tpm-dev-2'));
    const tpm = { endorsementKey: EK.toString('base64'), storageRootKey: SRK.toString('base64') };
    expect((await links.request(registerMessage('tpm-dev-2', 'tpm-1', { tpm }))).outcome).toBe('accepted');
    expect(service.registered.at(-1)).toMatchObject({
      registrationId: 'tpm-dev-2',
      proof: { kind: 'tpm', endorsementKey: tpm.endorsementKey, storageRootKey: tpm.storageRootKey, token: SAS },
    });

    // The body's keys must be those SASL attested.
    const other = { endorsementKey: SRK.toString('base64'), storageRootKey: tpm.storageRootKey };
    const refused = await links.request(registerMessage('tpm-dev-2', 'tpm-2', { tpm: other }));
    expect(refused.error?.condition).toBe('amqp:unauthorized-access');
    links.close();
  });

  test('the challenger refusing (a coded 4xx) is outcome auth; its crash is outcome sys; both close the connection', async () => {
    challenger.failure = Errors.enrollmentNotFound();
    const refused = await initiated('tpm-dev-3');
    await refused.next();
    refused.respond(zeroThen(SRK));
    expect((await refused.next()).performative.code).toBe(1);
    await refused.closed();

    challenger.failure = new Error('tpm engine down');
    const crashed = await initiated('tpm-dev-3');
    await crashed.next();
    crashed.respond(zeroThen(SRK));
    expect((await crashed.next()).performative.code).toBe(2);
    await crashed.closed();
  });

  test('a malformed init, an empty SRK, a wrong acknowledgement and an empty SAS get outcome auth', async () => {
    const badInit = await initiated('x', Buffer.from('TPM please'));
    expect((await badInit.next()).performative.code).toBe(1);
    await badInit.closed();

    const emptySrk = await initiated();
    await emptySrk.next();
    emptySrk.respond(Buffer.from([0]));
    expect((await emptySrk.next()).performative.code).toBe(1);
    await emptySrk.closed();

    const wrongAck = await initiated();
    await wrongAck.next();
    wrongAck.respond(zeroThen(SRK));
    await wrongAck.next();
    wrongAck.respond(Buffer.from([0, 1]));
    expect((await wrongAck.next()).performative.code).toBe(1);
    await wrongAck.closed();

    const emptySas = await initiated();
    await emptySas.next();
    emptySas.respond(zeroThen(SRK));
    for (;;) {
      const challenge: Buffer = (await emptySas.next()).performative.challenge;
      if (challenge[0]! & 0x40) break;
      emptySas.respond(Buffer.from([0]));
    }
    emptySas.respond(Buffer.from([0]));
    expect((await emptySas.next()).performative.code).toBe(1);
    await emptySas.closed();
  });
});
