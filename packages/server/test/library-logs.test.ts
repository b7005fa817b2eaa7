import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { connect } from 'node:tls';
import type { Logger } from '@opendps/model';
import { LIBRARY_TEXT_LIMIT, printable, routeLibraryOutput } from '../src/library-logs';
import { deviceSas } from './admin-support';
import { runCli, startCliServer, tempDir, type CliServer } from './support';

const fromAmqp = createRequire(resolve(__dirname, '../../../protocols/amqp/package.json'));
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const frames: any = fromAmqp('rhea/lib/frames.js');
const rheaLog = fromAmqp('rhea/lib/log.js') as { raw: (...args: unknown[]) => void };
const rheaDebug = createRequire(fromAmqp.resolve('rhea'))('debug') as { enable(namespaces: string): void; disable(): string };

/** Text a peer chose, with a line break and a forged JSON line in it. */
const FORGED = 'evil\n{"level":30,"msg":"forged"}\u001b[31m';

describe('printable and routeLibraryOutput', () => {
  test('control characters are escaped, long text is cut', () => {
    expect(printable(FORGED)).toBe('evil\\x0a{"level":30,"msg":"forged"}\\x1b[31m');
    expect(printable('é€')).toBe('\\xe9\\u{20ac}');
    const long = printable('x'.repeat(10_000));
    expect(long.length).toBeLessThan(LIBRARY_TEXT_LIMIT + 40);
    expect(long).toMatch(/\(10000 characters\)$/);
  });

  test('console calls become log records, and the undo puts console back', () => {
    const records: Array<[string, object, string | undefined]> = [];
    const logger: Logger = {
      info: (fields, message) => records.push(['info', fields, message]),
      warn: (fields, message) => records.push(['warn', fields, message]),
      error: (fields, message) => records.push(['error', fields, message]),
      debug: (fields, message) => records.push(['debug', fields, message]),
      child: () => logger,
    };
    const original = console.warn;
    const restore = routeLibraryOutput(logger);
    try {
      console.warn('WARNING: did not recognise message section with descriptor ' + FORGED);
      console.error('Received transfer when credit was %d', 0);
      // rhea's `debug` traces, as with DEBUG=rhea:*
      rheaDebug.enable('rhea:raw');
      rheaLog.raw('[%s] RECV: %d %h', 'c1', 3, Buffer.from([0x0a, 0x1b, 0x41]));
    } finally {
      rheaDebug.disable();
      restore();
    }
    expect(console.warn).toBe(original);
    expect(records).toEqual([
      ['warn', { text: `WARNING: did not recognise message section with descriptor ${printable(FORGED)}` }, 'library output'],
      ['warn', { text: 'Received transfer when credit was 0' }, 'library output'],
      ['debug', { text: expect.stringMatching(/rhea:raw.*\[c1\] RECV: 3 0a1b41/) }, 'rhea trace'],
    ]);
  });
});

/** What rhea prints for a peer's message: sections it does not know, a transfer without credit. */
function provokingBytes(idScope: string, key: string): { sasl: Buffer; amqp: Buffer } {
  const address = `${idScope}/registrations/log-dev`;
  const write = (performative: unknown, payload?: Buffer): Buffer => frames.write_frame(frames.amqp_frame(0, performative, payload));
  const symbol = Buffer.from(FORGED, 'latin1');
  // a section described by the peer's symbol, then a section that is not described at all
  const payload = Buffer.concat([Buffer.from([0x00, 0xa3, symbol.length]), symbol, Buffer.from([0x40, 0xa1, 0x03]), Buffer.from('abc')]);
  return {
    sasl: Buffer.concat([
      Buffer.from('AMQP\x03\x01\x00\x00', 'latin1'),
      frames.write_frame(
        frames.sasl_frame(frames.sasl_init({ mechanism: 'PLAIN', initial_response: Buffer.from(`\0${address}\0${deviceSas(idScope, 'log-dev', key)}`) })),
      ),
    ]),
    amqp: Buffer.concat([
      Buffer.from('AMQP\x00\x01\x00\x00', 'latin1'),
      write(frames.open({ container_id: 'log-dev' })),
      write(frames.begin({ next_outgoing_id: 0, incoming_window: 100, outgoing_window: 100 })),
      write(frames.attach({ name: 'l', handle: 0, role: false, source: {}, target: { address } })),
      write(frames.transfer({ handle: 0, delivery_id: 0, delivery_tag: Buffer.from('t'), message_format: 0 }), payload),
    ]),
  };
}

/** Resolves once the server printed `text` anywhere (the test's timeout bounds the wait). */
function printed(server: CliServer, text: string): Promise<void> {
  return new Promise((resolvePrinted) => {
    const streams = [server.child.stdout, server.child.stderr];
    const check = (): void => {
      if (!server.stdout().includes(text) && !server.stderr().includes(text)) return;
      for (const stream of streams) stream?.off('data', check);
      resolvePrinted();
    };
    for (const stream of streams) stream?.on('data', check);
    check();
  });
}

describe('the server log stays JSON lines when a peer provokes library output', () => {
  const dir = tempDir();
  let server: CliServer;

  // A SAS is verified when the connection opens (docs/device-wire.md §3): the device is enrolled.
  const key = Buffer.alloc(32, 9).toString('base64');

  beforeAll(async () => {
    server = await startCliServer(dir.path);
    const created = await runCli(['enrollment', 'create', 'log-dev', '--primary-key', key, '--data-dir', dir.path], { cwd: dir.path });
    expect(created.code).toBe(0);
  });
  afterAll(async () => {
    await server.stop();
    dir.remove();
  });

  test('rhea lines about a peer-chosen section arrive as escaped records; stdout and stderr are JSON lines', async () => {
    const { connection } = server;
    const { sasl, amqp } = provokingBytes(connection.idScope, key);
    const port = Number(connection.endpoints.amqp?.split(':').pop());
    const socket = connect({ host: 'localhost', port, servername: 'localhost', ca: readFileSync(connection.caFile) });
    let received = Buffer.alloc(0);
    let amqpSent = false;
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      // the SASL outcome (descriptor 0x44) ends the SASL layer; AMQP starts after it
      if (!amqpSent && received.includes(Buffer.from([0x00, 0x53, 0x44]))) {
        amqpSent = true;
        socket.write(amqp);
      }
    });
    socket.on('error', () => undefined);
    socket.once('secureConnect', () => socket.write(sasl));
    await printed(server, 'expected described message section');
    socket.destroy();

    const lines = server.stdout().split('\n').filter(Boolean);
    const records = lines.map((line) => JSON.parse(line) as { msg?: string; text?: string; source?: string });
    const library = records.filter((record) => record.source === 'library').map((record) => record.text);
    expect(library).toContain(`WARNING: did not recognise message section with descriptor ${printable(FORGED)}`);
    expect(library.some((text) => text?.startsWith('WARNING: expected described message section got'))).toBe(true);
    expect(records.some((record) => record.msg === 'forged')).toBe(false);
    expect(server.stderr()).toBe('');
  });
});
