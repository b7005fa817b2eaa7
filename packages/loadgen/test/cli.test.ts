import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRootCa } from '@opendps/pki';
import { LoadgenUsageError, parseLoadgenOptions } from '../src/cli';

/** Parsing `opendps loadgen` options: what each flag becomes, and clear refusals of bad input. */
const KEY = Buffer.alloc(32, 1).toString('base64');
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'loadgen-cli-'));
  writeFileSync(path.join(dir, 'ca.pem'), '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n');
  writeFileSync(
    path.join(dir, 'connection.json'),
    JSON.stringify({ idScope: '0ne00000001', caFile: path.join(dir, 'ca.pem'), endpoints: { mqtt: 'localhost:1883', amqp: 'localhost:5671', https: 'localhost:8443', hubs: [] } }),
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const refused = (values: Record<string, unknown>, message: RegExp) => expect(() => parseLoadgenOptions(values, dir)).toThrow(message);

it('reads the ID scope, endpoints and CA from connection.json; --host and --port override for the transport used', () => {
  const parsed = parseLoadgenOptions({ 'data-dir': dir, 'group-key': KEY, host: '127.0.0.1', port: '9443', transport: 'https' }, '/');
  expect(parsed.load.target).toMatchObject({ idScope: '0ne00000001', mqtt: { host: '127.0.0.1', port: 1883 }, https: { host: '127.0.0.1', port: 9443 } });
  expect(parsed.load.target.ca?.toString()).toContain('BEGIN CERTIFICATE');
  expect(parsed.load).toMatchObject({ transport: 'https', concurrency: 10, count: 100, attestation: { kind: 'group-key', prefix: 'loadgen-' } });
});

it("names Azure's defaults without a data directory", () => {
  const parsed = parseLoadgenOptions({ 'id-scope': '0ne00ABCDEF', host: 'global.azure-devices-provisioning.net', 'group-key': KEY, rate: '5', ramp: '10', duration: '60' }, dir);
  expect(parsed.load.target).toMatchObject({ mqtt: { port: 8883 }, amqp: { port: 5671 }, https: { port: 443 } });
  expect(parsed.load.target.ca).toBeUndefined();
  expect(parsed.load).toMatchObject({ rate: 5, rampMs: 10_000, durationMs: 60_000 });
  expect(parsed.load.count).toBeUndefined();
});

it('refuses bad input with a message naming the flag', () => {
  refused({ 'group-key': KEY, host: 'h' }, /--id-scope is required/);
  refused({ 'data-dir': dir }, /exactly one of --group-key, --keys/);
  refused({ 'data-dir': dir, 'group-key': KEY, keys: 'x.csv' }, /exactly one/);
  refused({ 'data-dir': dir, 'group-key': 'not base64!' }, /--group-key must be a base64 key/);
  refused({ 'data-dir': dir, 'group-key': KEY, transport: 'smoke-signals' }, /--transport must be one of/);
  refused({ 'data-dir': dir, 'group-key': KEY, concurrency: '0' }, /--concurrency must be an integer from 1/);
  refused({ 'data-dir': dir, 'group-key': KEY, ramp: '5' }, /--ramp needs --rate/);
  refused({ 'data-dir': dir, 'group-key': KEY, payload: '{nope' }, /--payload must be JSON/);
  refused({ 'data-dir': path.join(dir, 'missing'), 'group-key': KEY }, /--data-dir: no file/);
});

it('reads a keys file as CSV (header optional) or JSON, and refuses a malformed one', () => {
  writeFileSync(path.join(dir, 'keys.csv'), `registrationId,key\nd1,${KEY}\nd2,${KEY}\n`);
  writeFileSync(path.join(dir, 'keys.json'), JSON.stringify([{ registrationId: 'j1', key: KEY }]));
  writeFileSync(path.join(dir, 'bad.csv'), `d1\n`);
  const csv = parseLoadgenOptions({ 'data-dir': dir, keys: 'keys.csv' }, dir);
  expect(csv.load.attestation).toEqual({ kind: 'keys', devices: [{ registrationId: 'd1', key: KEY }, { registrationId: 'd2', key: KEY }] });
  expect(csv.load.count).toBeUndefined();
  expect(parseLoadgenOptions({ 'data-dir': dir, keys: 'keys.json' }, dir).load.attestation).toEqual({ kind: 'keys', devices: [{ registrationId: 'j1', key: KEY }] });
  refused({ 'data-dir': dir, keys: 'bad.csv' }, /--keys: .*line 1 is not 'registrationId,key'/);
});

it('refuses a CA key that is not the CA certificate’s before any device starts', () => {
  const one = createRootCa({ commonName: 'one' });
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' });
  writeFileSync(path.join(dir, 'one.pem'), one.certificatePem);
  writeFileSync(path.join(dir, 'two-key.pem'), other);
  writeFileSync(path.join(dir, 'one-key.pem'), one.privateKeyPem);
  expect(parseLoadgenOptions({ 'data-dir': dir, 'ca-cert': 'one.pem', 'ca-key': 'one-key.pem' }, dir).load.attestation.kind).toBe('x509');
  expect(() => parseLoadgenOptions({ 'data-dir': dir, 'ca-cert': 'one.pem', 'ca-key': 'two-key.pem' }, dir)).toThrow(LoadgenUsageError);
  refused({ 'data-dir': dir, 'ca-cert': 'one.pem' }, /needs both --ca-cert and --ca-key/);
});
