import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createVerificationCertificate } from '@opendps/pki';
import { stringValue, type Command, type CommandGroup, type OptionSpecs, type Values } from '../command';
import { CliFailure, UsageError } from '../errors';
import { EXIT_OK, type CliIo } from '../io';
import { callServiceApi } from '../service-client';
import { resolveTarget, TARGET_OPTIONS, type ServiceTarget } from '../target';

/**
 * `opendps ca …`: CA certificates an X.509 enrollment group may name in `caReferences`, managed
 * through the `/certificates` admin API (the ServiceConfig right). A CA counts for attestation only
 * once verified: get a verification code, then prove possession of the CA key with a certificate
 * whose CN is that code, signed by the CA (`verify --ca-key` makes and sends it in one step).
 */
const ETAG: OptionSpecs = { etag: { type: 'string', value: 'ETAG', help: 'act only if the current etag matches (If-Match)' } };
const NAME = '<name>';

interface CertificateResponse {
  name: string;
  etag?: string;
  properties: { thumbprint: string; isVerified: boolean; verificationCode?: string; certificate: string; subject: string };
}

const certificatePath = (name: string, action?: string): string =>
  `/certificates/${encodeURIComponent(name)}${action ? `/${action}` : ''}`;

const ifMatch = (values: Values): { headers?: Record<string, string> } => {
  const etag = stringValue(values, 'etag');
  return etag ? { headers: { 'if-match': etag } } : {};
};

const addCommand: Command = {
  name: 'add',
  summary: 'Upload (or replace) a CA certificate; it starts unverified.',
  synopsis: `${NAME} --certificate FILE [options]`,
  options: {
    certificate: { type: 'string', value: 'FILE', help: 'the CA certificate: PEM, or DER/base64 (required)' },
    ...ETAG,
    ...TARGET_OPTIONS,
  },
  details: [
    'Uploading the same certificate again keeps its verification; a different certificate under the',
    "same name resets it. Next: 'opendps ca verification-code <name>', then 'opendps ca verify'.",
  ].join('\n'),
  positionals: { min: 1, max: 1 },
  async run(values, [name = ''], io) {
    const certificate = readCertificateFile(io, stringValue(values, 'certificate'), '--certificate');
    const response = await callServiceApi(resolveTarget(values, io), 'PUT', certificatePath(name), { body: { certificate }, ...ifMatch(values) });
    printJson(io, response.body);
    return EXIT_OK;
  },
};

const verificationCodeCommand: Command = {
  name: 'verification-code',
  summary: 'Generate a verification code for a CA (replaces any pending one); prints the certificate with it.',
  synopsis: `${NAME} [options]`,
  options: { ...ETAG, ...TARGET_OPTIONS },
  details: [
    'Prove possession of the CA key with a certificate whose subject CN is the code, signed by the CA,',
    "and upload it with 'opendps ca verify <name> --certificate PROOF_FILE' (or let",
    "'opendps ca verify <name> --ca-key CA_KEY_FILE' make it). The code is single-use.",
  ].join('\n'),
  positionals: { min: 1, max: 1 },
  async run(values, [name = ''], io) {
    const response = await callServiceApi(resolveTarget(values, io), 'POST', certificatePath(name, 'generateVerificationCode'), ifMatch(values));
    printJson(io, response.body);
    return EXIT_OK;
  },
};

const verifyCommand: Command = {
  name: 'verify',
  summary: 'Verify a CA by proof of possession: upload a proof, or make it from the CA key.',
  synopsis: `${NAME} (--certificate PROOF_FILE | --ca-key CA_KEY_FILE [--ca-certificate CA_FILE]) [options]`,
  options: {
    certificate: { type: 'string', value: 'FILE', help: 'a proof certificate: CN = the verification code, signed by the CA' },
    'ca-key': { type: 'string', value: 'FILE', help: 'the CA private key (PEM): make the proof here, sign it, upload it' },
    'ca-certificate': { type: 'string', value: 'FILE', help: 'with --ca-key: the CA certificate (default: the one registered)' },
    ...ETAG,
    ...TARGET_OPTIONS,
  },
  details: [
    'With --ca-key the pending verification code is used (one is generated when none is pending);',
    'the key never leaves this machine, only the proof certificate is sent.',
  ].join('\n'),
  positionals: { min: 1, max: 1 },
  async run(values, [name = ''], io) {
    const proofFile = stringValue(values, 'certificate');
    const keyFile = stringValue(values, 'ca-key');
    if (proofFile && keyFile) throw new UsageError('Give either --certificate or --ca-key, not both');
    if (!proofFile && !keyFile) throw new UsageError('--certificate PROOF_FILE or --ca-key CA_KEY_FILE is required');
    if (proofFile && stringValue(values, 'ca-certificate')) throw new UsageError('--ca-certificate goes with --ca-key');
    const target = resolveTarget(values, io);
    const proof = proofFile
      ? { certificate: readCertificateFile(io, proofFile, '--certificate'), options: ifMatch(values) }
      : await makeProof(target, name, values, io, keyFile as string);
    const response = await callServiceApi(target, 'POST', certificatePath(name, 'verify'), { body: { certificate: proof.certificate }, ...proof.options });
    printJson(io, response.body);
    return EXIT_OK;
  },
};

/** The proof for the pending code (generated when none is), signed with the CA key, sent If-Match the state it answers. */
async function makeProof(
  target: ServiceTarget,
  name: string,
  values: Values,
  io: CliIo,
  keyFile: string,
): Promise<{ certificate: string; options: { headers: Record<string, string> } }> {
  const privateKeyPem = readFile(io, keyFile, '--ca-key');
  let registered = (await callServiceApi(target, 'GET', certificatePath(name), ifMatch(values))).body as CertificateResponse;
  const caFile = stringValue(values, 'ca-certificate');
  const certificatePem = caFile ? readCertificateFile(io, caFile, '--ca-certificate') : registered.properties.certificate;
  const ca = parseX509(certificatePem, caFile ? '--ca-certificate' : `the registered certificate of '${name}'`);
  if (ca.fingerprint.replace(/:/g, '') !== registered.properties.thumbprint.toUpperCase()) {
    throw new CliFailure(`--ca-certificate is not the certificate registered as '${name}' (${registered.properties.subject})`);
  }
  assertKeyMatches(ca, privateKeyPem);
  if (!registered.properties.verificationCode) {
    const generated = await callServiceApi(target, 'POST', certificatePath(name, 'generateVerificationCode'), ifMatch(values));
    registered = generated.body as CertificateResponse;
  }
  const code = registered.properties.verificationCode;
  if (!code || !registered.etag) throw new CliFailure(`The service returned no verification code for '${name}'`);
  const proof = createVerificationCertificate({ certificatePem: ca.toString(), privateKeyPem }, code);
  return { certificate: proof.certificatePem, options: { headers: { 'if-match': registered.etag } } };
}

function assertKeyMatches(ca: X509Certificate, privateKeyPem: string): void {
  let publicDer: Buffer;
  try {
    publicDer = createPublicKey(createPrivateKey(privateKeyPem)).export({ type: 'spki', format: 'der' });
  } catch {
    throw new UsageError('--ca-key holds no readable PEM private key (an unencrypted key is needed)');
  }
  if (!publicDer.equals(ca.publicKey.export({ type: 'spki', format: 'der' }))) {
    throw new CliFailure('--ca-key is not the private key of the CA certificate');
  }
}

const listCommand: Command = {
  name: 'list',
  summary: 'Print every CA certificate of the instance as one JSON array.',
  synopsis: '[options]',
  options: { ...TARGET_OPTIONS },
  positionals: { min: 0, max: 0 },
  async run(values, _positionals, io) {
    const response = await callServiceApi(resolveTarget(values, io), 'GET', '/certificates');
    printJson(io, (response.body as { value?: unknown[] } | undefined)?.value ?? []);
    return EXIT_OK;
  },
};

const showCommand: Command = {
  name: 'show',
  summary: 'Print a CA certificate (with its pending verification code, if any).',
  synopsis: `${NAME} [options]`,
  options: { ...TARGET_OPTIONS },
  positionals: { min: 1, max: 1 },
  async run(values, [name = ''], io) {
    printJson(io, (await callServiceApi(resolveTarget(values, io), 'GET', certificatePath(name))).body);
    return EXIT_OK;
  },
};

const deleteCommand: Command = {
  name: 'delete',
  summary: 'Delete a CA certificate (refused while enrollment groups reference it).',
  synopsis: `${NAME} [options]`,
  options: { ...ETAG, ...TARGET_OPTIONS },
  positionals: { min: 1, max: 1 },
  async run(values, [name = ''], io) {
    await callServiceApi(resolveTarget(values, io), 'DELETE', certificatePath(name), ifMatch(values));
    io.out(`Deleted CA certificate '${name}'.`);
    return EXIT_OK;
  },
};

export const caGroup: CommandGroup = {
  name: 'ca',
  summary: 'Manage CA certificates for X.509 group caReferences (proof of possession).',
  subcommands: [addCommand, verificationCodeCommand, verifyCommand, listCommand, showCommand, deleteCommand],
};

function readFile(io: CliIo, file: string, flag: string): string {
  const path = resolve(io.cwd, file);
  if (!existsSync(path)) throw new UsageError(`${flag}: ${path} does not exist`);
  return readFileSync(path, 'utf8');
}

/** A certificate file as text: PEM as is, binary DER as base64 (the API takes both). */
function readCertificateFile(io: CliIo, file: string | undefined, flag: string): string {
  if (!file) throw new UsageError(`${flag} FILE is required`);
  const path = resolve(io.cwd, file);
  if (!existsSync(path)) throw new UsageError(`${flag}: ${path} does not exist`);
  const bytes = readFileSync(path);
  const text = bytes.toString('utf8');
  return text.includes('-----BEGIN') || /^[A-Za-z0-9+/=\s]+$/.test(text) ? text : bytes.toString('base64');
}

function parseX509(text: string, what: string): X509Certificate {
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(text)?.[0];
  try {
    return new X509Certificate(pem ?? Buffer.from(text.replace(/\s+/g, ''), 'base64'));
  } catch {
    throw new UsageError(`${what} is not a readable certificate`);
  }
}

function printJson(io: CliIo, value: unknown): void {
  io.out(JSON.stringify(value, null, 2));
}
