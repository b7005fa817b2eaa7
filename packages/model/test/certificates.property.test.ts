import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { certificateInfo, DpsError, parseCertificates } from '@opendps/model';

/**
 * Seeded, bounded: operators upload certificates in every encoding (docs/service-rest.md §4), and
 * devices present them; arbitrary and mutated ones must end in certificates or a coded error.
 */
const RUNS = { seed: 1, numRuns: 300 };
let dir: string;
let ders: Buffer[];

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'model-certs-property-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const der = (name: string, subject: string): Buffer => {
    const file = path.join(dir, `${name}.der`);
    execFileSync('openssl', ['req', '-x509', ...ec, '-keyout', path.join(dir, `${name}.key`), '-outform', 'DER', '-out', file, '-subj', subject, '-days', '2'], { stdio: 'pipe' });
    return readFileSync(file);
  };
  ders = [der('a', '/O=Property Org/CN=device-a'), der('b', '/CN=device-b')];
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function onlyCoded(work: () => unknown): void {
  try {
    work();
  } catch (error) {
    if (!(error instanceof DpsError)) throw new Error(`threw ${String(error)} instead of a DpsError`);
  }
}

const pem = (der: Buffer) => `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE-----\n`;

/** A DER certificate with a few bytes changed or cut (chosen by index: the fixtures exist only once beforeAll ran). */
const mutatedDer = fc
  .tuple(fc.nat(), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }), fc.option(fc.nat(), { nil: undefined }))
  .map(([which, changes, cut]) => {
    const out = Buffer.from(ders[which % ders.length] as Buffer);
    for (const [at, value] of changes) out[at % out.length] = value;
    return cut === undefined ? out : out.subarray(0, cut % out.length);
  });

describe('parseCertificates and certificateInfo on arbitrary input', () => {
  test('arbitrary text, base64 and mutated PEM or DER give certificates with their info, or a coded error', () => {
    const input = fc.oneof(
      fc.string({ maxLength: 400 }),
      fc.uint8Array({ maxLength: 600 }).map((b) => Buffer.from(b).toString('base64')),
      mutatedDer.map(pem),
      mutatedDer.map((der) => der.toString('base64')),
      fc.tuple(mutatedDer, fc.string({ maxLength: 40 })).map(([der, noise]) => `${noise}${pem(der)}${noise}-----BEGIN CERTIFICATE-----${noise}`),
    );
    fc.assert(
      fc.property(input, (text) =>
        onlyCoded(() => {
          for (const parsed of parseCertificates(text)) certificateInfo(parsed);
        }),
      ),
      RUNS,
    );
  });

  test('a certificate whose validity Node decodes but Date cannot read is a 400005 (found by the property above)', () => {
    // notBefore's UTCTime with a NUL where its first digit was: OpenSSL still decodes the certificate.
    const der = Buffer.from(ders[0] as Buffer);
    const at = der.indexOf(Buffer.from([0x17, 0x0d])) + 2;
    der[at] = 0x00;
    const [parsed] = parseCertificates(der.toString('base64'));
    expect(() => certificateInfo(parsed!)).toThrow(expect.objectContaining({ errorCode: 400005 }));
  });

  test('every encoding clients send of valid certificates parses to the same DER', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 }), fc.constantFrom('pem', 'one-line', 'base64-pem', 'base64-der'), (count, form) => {
        const chosen = ders.slice(0, count);
        const pems = chosen.map(pem).join('');
        const text =
          form === 'pem' ? pems : form === 'one-line' ? pems.replace(/\n/g, ' ') : form === 'base64-pem' ? Buffer.from(pems).toString('base64') : (chosen[0] as Buffer).toString('base64');
        expect(parseCertificates(text).map((parsed) => parsed.der)).toEqual(form === 'base64-der' ? chosen.slice(0, 1) : chosen);
      }),
      RUNS,
    );
  });
});
