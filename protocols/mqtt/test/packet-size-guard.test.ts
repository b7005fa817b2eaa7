import { Duplex, PassThrough } from 'node:stream';
import fc from 'fast-check';
import { parser } from 'mqtt-packet';
import { createDpsMqttFrontEnd } from '../src';
import { endAfterDisconnect, GOODBYE_LINGER_MS } from '../src/aedes';
import { guardParserInput, type MqttParser } from '../src/packet-size-guard';
import { chunked, encodeLength, firstProblem } from '../../../test/support/mqtt-stream';
import { ScriptedRegistration } from './helpers';

const RUNS = { seed: 1, numRuns: 300 };

/** A well-formed MQTT packet: any first byte, a minimal remaining length, that many body bytes. */
const packetArb = (maxBody: number) =>
  fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: maxBody })).map(([first, length]) =>
    Buffer.concat([Buffer.from([first, ...encodeLength(length)]), Buffer.alloc(length, 0x61)]),
  );

/**
 * Feeds chunks to a real mqtt-packet parser behind the guard: the bytes that reached the parser
 * itself (its prototype's parse) and whether the parser failed with the guard's refusal.
 */
function throughGuard(chunks: Buffer[], max: number): { passed: Buffer; closed: boolean } {
  const mqtt = parser() as unknown as MqttParser;
  const passed: Buffer[] = [];
  const parse = jest.spyOn(Object.getPrototypeOf(mqtt) as MqttParser, 'parse').mockImplementation((chunk: Buffer) => {
    passed.push(Buffer.from(chunk));
    return 0;
  });
  let closed = false;
  try {
    guardParserInput(mqtt, max);
    mqtt.on('error', () => (closed = true));
    for (const chunk of chunks) mqtt.parse(chunk); // aedes keeps reading until it handles the error
  } finally {
    parse.mockRestore();
  }
  return { passed: Buffer.concat(passed), closed };
}

describe('the packet size guard on the parser input (MQTT fixed header inspection)', () => {
  test('well-formed packets up to the limit pass through unchanged however the stream is chunked', () => {
    fc.assert(
      fc.property(fc.array(packetArb(300), { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 10 }), (packets, cuts) => {
        const data = Buffer.concat(packets);
        const { passed, closed } = throughGuard(chunked(data, cuts), 300);
        expect(closed).toBe(false);
        expect(passed.equals(data)).toBe(true);
      }),
      RUNS,
    );
  });

  test('arbitrary bytes: closed exactly when the reference finds an oversized or malformed header, never throws', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.array(fc.nat(), { maxLength: 10 }), fc.integer({ min: 0, max: 400 }), (bytes, cuts, max) => {
        const data = Buffer.from(bytes);
        const problem = firstProblem(data, max);
        const { passed, closed } = throughGuard(chunked(data, cuts), max);
        expect(closed).toBe(problem !== undefined);
        // Nothing of the chunk that carries the bad header reaches the parser.
        if (problem !== undefined) expect(passed.length).toBeLessThan(problem);
        else expect(passed.equals(data)).toBe(true);
      }),
      RUNS,
    );
  });
});

describe('the DPS MQTT front-end behind the guard', () => {
  test('an oversized header already buffered when the stream is handed over closes that stream, not the process', async () => {
    // A WebSocket upgrade whose head carries the frames delivers them before the broker attaches (found by pnpm fuzz).
    const frontEnd = createDpsMqttFrontEnd({ registration: new ScriptedRegistration(), maxPacketBytes: 10 });
    // An 'error' emitted with no listener throws out of a nextTick: in a server, that ends the process.
    const unhandled: string[] = [];
    const emit = jest.spyOn(PassThrough.prototype, 'emit').mockImplementation(function (this: PassThrough, event, ...args) {
      if (event === 'error' && this.listenerCount('error') === 0) unhandled.push(String(args[0]));
      return Duplex.prototype.emit.call(this, event, ...args);
    });
    try {
      // First a connection that gets its CONNACK: from then on the broker is up and attaches synchronously.
      const fromServer = new PassThrough();
      const toServer = new PassThrough();
      const connack = new Promise((resolve) => fromServer.once('data', resolve));
      frontEnd.handleConnection(Duplex.from({ readable: toServer, writable: fromServer }), { transport: 'mqtt' });
      toServer.write(Buffer.from('101600044d5154540402003c000a6465766963652d6f6e65', 'hex')); // CONNECT, client id device-one
      await connack;

      const inner = new PassThrough();
      inner.write(Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f]));
      const closed = new Promise<void>((resolve) => inner.once('close', () => resolve()));
      // From a macrotask, as the upgrade callback runs: its nextTicks run before the broker's promise callback.
      setImmediate(() => frontEnd.handleConnection(inner, { transport: 'mqtt-ws' }));
      await closed;
      await new Promise((resolve) => setImmediate(resolve)); // an unhandled 'error' would surface here
      expect(inner.destroyed).toBe(true);
      expect(unhandled).toEqual([]);
    } finally {
      emit.mockRestore();
      await frontEnd.close();
    }
  });
});

describe('the connection after a DISCONNECT', () => {
  /** An in-memory socket and an mqtt-packet parser reading it, as aedes wires them. */
  function connection() {
    const socket = new Duplex({ allowHalfOpen: false, read() {}, write: (_chunk, _encoding, done) => done() });
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const reader = parser() as unknown as MqttParser;
    endAfterDisconnect(reader, socket);
    return { socket, closed, reader };
  }
  const DISCONNECT = Buffer.from([0xe0, 0x00]);
  const PINGREQ = Buffer.from([0xc0, 0x00]);

  afterEach(() => jest.useRealTimers());

  test('aedes destroying it after DISCONNECT ends the socket (FIN) and it closes on the peer FIN, not by a reset', async () => {
    const { socket, closed, reader } = connection();
    reader.parse(DISCONNECT);
    socket.destroy(); // what aedes does on DISCONNECT [MQTT-3.14.4-2]
    expect(socket.writableEnded).toBe(true);
    expect(socket.destroyed).toBe(false);
    socket.resume();
    socket.push(Buffer.from('late bytes are read and dropped')); // a reset comes from unread bytes
    socket.push(null); // the client's FIN
    await closed;
    expect(socket.destroyed).toBe(true);
  });

  test('a client that sent DISCONNECT but never closes its side is cut off after the linger', async () => {
    jest.useFakeTimers();
    const { socket, reader } = connection();
    reader.parse(DISCONNECT);
    socket.destroy();
    expect(socket.destroyed).toBe(false);
    await jest.advanceTimersByTimeAsync(GOODBYE_LINGER_MS - 1);
    expect(socket.destroyed).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    expect(socket.destroyed).toBe(true);
  });

  test('without a DISCONNECT, or on an error, destroying it destroys the socket at once', () => {
    for (const [sent, error] of [[PINGREQ, undefined], [DISCONNECT, new Error('broken')]] as const) {
      const { socket, reader } = connection();
      socket.on('error', () => undefined);
      reader.parse(sent);
      socket.destroy(error);
      expect(socket.destroyed).toBe(true);
    }
  });
});
