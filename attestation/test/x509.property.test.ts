import { X509Certificate } from 'node:crypto';
import fc from 'fast-check';
import { DpsError } from '@opendps/model';
import { createIntermediateCa, createLeaf, createRootCa } from '@opendps/pki';
import { basicConstraints, parseClientChain, verifyCertificateChain } from '../src';

/** Seeded, bounded: the chain a device presents in TLS reaches these before anything else. */
const RUNS = { seed: 1, numRuns: 300 };
const NOW = new Date();
const root = createRootCa({ commonName: 'property root', validityDays: 2 });
const intermediate = createIntermediateCa(root, { commonName: 'property intermediate', validityDays: 2 });
const leaf = createLeaf(intermediate, { commonName: 'property-device', validityDays: 2 });
const chainDer = [leaf, intermediate, root].map((issued) => new X509Certificate(issued.certificatePem).raw);

function onlyCoded(work: () => unknown): void {
  try {
    work();
  } catch (error) {
    if (!(error instanceof DpsError)) throw new Error(`threw ${String(error)} instead of a DpsError`);
  }
}

/** A DER certificate with a few bytes changed or cut. */
const mutatedDer = fc
  .tuple(fc.constantFrom(...chainDer), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }), fc.option(fc.nat(), { nil: undefined }))
  .map(([der, changes, cut]) => {
    const out = Buffer.from(der);
    for (const [at, value] of changes) out[at % out.length] = value;
    return cut === undefined ? out : out.subarray(0, cut % out.length);
  });

describe('client chains on arbitrary input', () => {
  test('parseClientChain and verifyCertificateChain: arbitrary and mutated DER give a verdict or a 401002', () => {
    const element = fc.oneof(mutatedDer, fc.constantFrom(...chainDer), fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)));
    fc.assert(
      fc.property(fc.array(element, { maxLength: 12 }), (chain) =>
        onlyCoded(() => verifyCertificateChain(parseClientChain(chain), { now: NOW })),
      ),
      RUNS,
    );
  });

  test('basicConstraints reads any DER Node accepts, or says why with a RangeError (the coded error is the caller\'s)', () => {
    fc.assert(
      fc.property(mutatedDer, (der) => {
        let x509: X509Certificate;
        try {
          x509 = new X509Certificate(der);
        } catch {
          return;
        }
        try {
          basicConstraints(x509);
        } catch (error) {
          expect(error).toBeInstanceOf(RangeError);
        }
      }),
      RUNS,
    );
  });

  test('the valid chain verifies; any other order does not', () => {
    verifyCertificateChain(parseClientChain(chainDer), { now: NOW });
    expect(() => verifyCertificateChain(parseClientChain([chainDer[1] as Buffer, chainDer[0] as Buffer]), { now: NOW })).toThrow(DpsError);
  });
});
