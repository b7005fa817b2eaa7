import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createIntermediateCa, createLeaf, createRootCa, type Issued } from '@opendps/pki';
import { isValidRegistrationId } from '@opendps/model';
import { stringValue, type Command, type CommandGroup, type OptionSpecs, type Values } from '../command';
import { UsageError } from '../errors';
import { EXIT_OK, type CliIo } from '../io';

/**
 * `opendps cert …`: PEM files for X.509 attestation tests. `NAME.pem` holds the certificate,
 * `NAME-key.pem` (0600) its key, and `NAME-chain.pem` the certificate followed by its issuers
 * (what a device presents in TLS).
 */
const DAYS: OptionSpecs = { days: { type: 'string', value: 'N', help: 'validity in days' } };
const ISSUER: OptionSpecs = {
  'issuer-cert': { type: 'string', value: 'FILE', help: 'PEM of the issuing CA certificate' },
  'issuer-key': { type: 'string', value: 'FILE', help: 'PEM of the issuing CA key' },
};

const rootCommand: Command = {
  name: 'root',
  summary: 'Create a self-signed root CA.',
  synopsis: '[options]',
  options: {
    cn: { type: 'string', value: 'NAME', help: "subject common name (default 'OpenDPS Test Root CA')" },
    out: { type: 'string', value: 'PATH', help: 'output path without .pem (default ./root-ca)' },
    ...DAYS,
  },
  positionals: { min: 0, max: 0 },
  async run(values, _positionals, io) {
    const root = createRootCa({ commonName: stringValue(values, 'cn') ?? 'OpenDPS Test Root CA', ...validity(values) });
    report(io, { root: write(resolve(io.cwd, stringValue(values, 'out') ?? 'root-ca'), root) });
    return EXIT_OK;
  },
};

const intermediateCommand: Command = {
  name: 'intermediate',
  summary: 'Create an intermediate CA signed by --issuer-cert/--issuer-key.',
  synopsis: '--issuer-cert FILE --issuer-key FILE [options]',
  options: {
    cn: { type: 'string', value: 'NAME', help: "subject common name (default 'OpenDPS Test Intermediate CA')" },
    out: { type: 'string', value: 'PATH', help: 'output path without .pem (default ./intermediate-ca)' },
    ...ISSUER,
    ...DAYS,
  },
  positionals: { min: 0, max: 0 },
  async run(values, _positionals, io) {
    const issuer = readIssuer(values, io, true) as IssuerFiles;
    const intermediate = createIntermediateCa(issuer.issued, {
      commonName: stringValue(values, 'cn') ?? 'OpenDPS Test Intermediate CA',
      ...validity(values),
    });
    report(io, { intermediate: write(resolve(io.cwd, stringValue(values, 'out') ?? 'intermediate-ca'), intermediate, issuer.chainPem) });
    return EXIT_OK;
  },
};

const deviceCommand: Command = {
  name: 'device',
  summary: 'Create a device (client) certificate whose common name is the registration id.',
  synopsis: '--cn REGISTRATION_ID [options]',
  options: {
    cn: { type: 'string', value: 'ID', help: 'subject common name = the registration id (required)' },
    out: { type: 'string', value: 'PATH', help: 'output path without .pem (default ./<cn>)' },
    ...ISSUER,
    ...DAYS,
  },
  details: 'Without --issuer-cert/--issuer-key the certificate is self-signed (individual X.509 enrollments).',
  positionals: { min: 0, max: 0 },
  async run(values, _positionals, io) {
    const registrationId = registrationIdOf(stringValue(values, 'cn'), '--cn');
    const issuer = readIssuer(values, io, false);
    const device = createLeaf(issuer?.issued, { commonName: registrationId, ...validity(values) });
    report(io, { device: write(resolve(io.cwd, stringValue(values, 'out') ?? registrationId), device, issuer?.chainPem) });
    return EXIT_OK;
  },
};

const fleetCommand: Command = {
  name: 'fleet',
  summary: 'Create N device certificates under one intermediate CA (and a root CA unless one is given).',
  synopsis: '--count N [options]',
  options: {
    count: { type: 'string', value: 'N', help: 'how many device certificates (1-10000, required)' },
    'out-dir': { type: 'string', value: 'DIR', help: 'where to write (default ./fleet)' },
    prefix: { type: 'string', value: 'TEXT', help: "registration ids are <prefix>-<n> (default 'device')" },
    ...ISSUER,
    ...DAYS,
  },
  details: [
    'Writes root-ca.pem (unless --issuer-cert is given), intermediate-ca.pem and for each device',
    '<prefix>-<n>.pem, <prefix>-<n>-key.pem and <prefix>-<n>-chain.pem (device + intermediate),',
    'then prints a JSON summary of the files.',
  ].join('\n'),
  positionals: { min: 0, max: 0 },
  async run(values, _positionals, io) {
    const countText = stringValue(values, 'count');
    if (!countText || !/^\d+$/.test(countText) || Number(countText) < 1 || Number(countText) > 10000) {
      throw new UsageError('--count must be a number from 1 to 10000');
    }
    const prefix = stringValue(values, 'prefix') ?? 'device';
    registrationIdOf(`${prefix}-1`, '--prefix');
    const dir = resolve(io.cwd, stringValue(values, 'out-dir') ?? 'fleet');
    mkdirSync(dir, { recursive: true });
    const given = readIssuer(values, io, false);
    const summary: Record<string, unknown> = {};
    let root: IssuerFiles;
    if (given) root = given;
    else {
      const issued = createRootCa({ commonName: 'OpenDPS Fleet Root CA', ...validity(values) });
      summary.root = write(join(dir, 'root-ca'), issued);
      root = { issued, chainPem: issued.certificatePem };
    }
    const intermediate = createIntermediateCa(root.issued, { commonName: 'OpenDPS Fleet Intermediate CA', ...validity(values) });
    summary.intermediate = write(join(dir, 'intermediate-ca'), intermediate, root.chainPem);
    summary.devices = Array.from({ length: Number(countText) }, (_, index) => {
      const registrationId = `${prefix}-${index + 1}`;
      const device = createLeaf(intermediate, { commonName: registrationId, ...validity(values) });
      // The chain a device presents: itself and the intermediate (the root is what the group trusts).
      return { registrationId, ...write(join(dir, registrationId), device, intermediate.certificatePem) };
    });
    report(io, summary);
    return EXIT_OK;
  },
};

export const certGroup: CommandGroup = {
  name: 'cert',
  summary: 'Write test certificates (PEM) for X.509 attestation.',
  subcommands: [rootCommand, intermediateCommand, deviceCommand, fleetCommand],
};

interface IssuerFiles {
  issued: Issued;
  /** The issuer's certificate file as given (it may already hold its own chain). */
  chainPem: string;
}

function readIssuer(values: Values, io: CliIo, required: boolean): IssuerFiles | undefined {
  const certFile = stringValue(values, 'issuer-cert');
  const keyFile = stringValue(values, 'issuer-key');
  if (!certFile && !keyFile) {
    if (required) throw new UsageError('--issuer-cert and --issuer-key are required');
    return undefined;
  }
  if (!certFile || !keyFile) throw new UsageError('--issuer-cert and --issuer-key go together');
  const read = (file: string, flag: string): string => {
    const path = resolve(io.cwd, file);
    if (!existsSync(path)) throw new UsageError(`${flag}: ${path} does not exist`);
    return readFileSync(path, 'utf8');
  };
  const chainPem = read(certFile, '--issuer-cert');
  const first = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\s*/.exec(chainPem)?.[0];
  if (!first) throw new UsageError('--issuer-cert holds no PEM certificate');
  return { issued: { certificatePem: first, privateKeyPem: read(keyFile, '--issuer-key') }, chainPem };
}

function validity(values: Values): { validityDays?: number } {
  const days = stringValue(values, 'days');
  if (days === undefined) return {};
  if (!/^\d+$/.test(days) || Number(days) < 1 || Number(days) > 36500) throw new UsageError('--days must be a number from 1 to 36500');
  return { validityDays: Number(days) };
}

function registrationIdOf(value: string | undefined, flag: string): string {
  if (!value) throw new UsageError(`${flag} is required`);
  if (!isValidRegistrationId(value)) {
    throw new UsageError(`${flag}: '${value}' is not a valid registration id (alphanumerics and : . _ -, at most 128)`);
  }
  return value;
}

function write(path: string, issued: Issued, issuerChainPem?: string): { certificate: string; key: string; chain?: string } {
  mkdirSync(dirname(path), { recursive: true });
  const files: { certificate: string; key: string; chain?: string } = { certificate: `${path}.pem`, key: `${path}-key.pem` };
  writeFileSync(files.certificate, issued.certificatePem);
  writeFileSync(files.key, issued.privateKeyPem, { mode: 0o600 });
  if (issuerChainPem) {
    files.chain = `${path}-chain.pem`;
    writeFileSync(files.chain, `${issued.certificatePem.trimEnd()}\n${issuerChainPem.trimEnd()}\n`);
  }
  return files;
}

function report(io: CliIo, summary: unknown): void {
  io.out(JSON.stringify(summary, null, 2));
}
