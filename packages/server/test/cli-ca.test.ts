import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { main } from '../src/cli/main';
import { captureIo, runCli, startCliServer, tempDir, type CliServer } from './support';

/** Needs the built CLI: `npx tsc -b packages/server` (the root `pnpm test` builds first). */
describe('opendps ca against a spawned `opendps start`', () => {
  const dir = tempDir('opendps-ca-');
  const dataDir = join(dir.path, 'data');
  const file = (name: string): string => join(dir.path, name);
  let server: CliServer;
  beforeAll(async () => {
    server = await startCliServer(dataDir);
    for (const name of ['root', 'other']) {
      const made = await runCli(['cert', 'root', '--cn', `CA ${name}`, '--out', file(name)]);
      expect(made.code).toBe(0);
    }
  });
  afterAll(async () => {
    if (server.child.exitCode === null) await server.stop();
    dir.remove();
  });

  const cli = (...args: string[]) => runCli([...args, '--data-dir', dataDir], { cwd: dir.path });
  const json = (stdout: string) => JSON.parse(stdout);

  /** One device-API call over TLS with the device's certificate chain (X.509 attestation). */
  function deviceCall(method: string, path: string, device: string): Promise<{ status: number; body: Record<string, unknown> }> {
    const [host, port] = server.connection.endpoints.https.split(':');
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host, port: Number(port), method, path: `/${server.connection.idScope}/registrations/${device}/${path}?api-version=2021-06-01`,
          ca: readFileSync(server.connection.caFile), cert: readFileSync(file(`${device}-chain.pem`)), key: readFileSync(file(`${device}-key.pem`)),
          headers: { 'content-type': 'application/json' }, agent: false,
        },
        (res) => {
          let text = '';
          res.on('data', (chunk: Buffer) => (text += chunk.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : {} }));
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify({ registrationId: device }));
    });
  }

  /** Registers and polls to the end: the final operation status and the error code of a refusal. */
  async function register(device: string): Promise<{ status: unknown; errorCode?: unknown }> {
    let reply = await deviceCall('PUT', 'register', device);
    for (let attempt = 0; reply.status === 202 && reply.body.status === 'assigning' && attempt < 50; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      reply = await deviceCall('GET', `operations/${String(reply.body.operationId)}`, device);
    }
    return reply.status >= 400 ? { status: reply.status, errorCode: reply.body.errorCode } : { status: reply.body.status };
  }

  it('adds a CA, verifies it with --ca-key, lists it verified, and a group may then reference it', async () => {
    const added = await cli('ca', 'add', 'fleet-root', '--certificate', 'root.pem');
    expect(added.stderr).toBe('');
    expect(added.code).toBe(0);
    const thumbprint = new X509Certificate(readFileSync(file('root.pem'))).fingerprint.replace(/:/g, '');
    expect(json(added.stdout)).toMatchObject({ name: 'fleet-root', properties: { subject: 'CN=CA root', thumbprint, isVerified: false } });

    const coded = await cli('ca', 'verification-code', 'fleet-root');
    expect(coded.code).toBe(0);
    const code = json(coded.stdout).properties.verificationCode as string;
    expect(code).toMatch(/^[0-9A-F]{48}$/);

    // the key of another CA is refused before anything is sent
    const wrongKey = await cli('ca', 'verify', 'fleet-root', '--ca-key', 'other-key.pem');
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stderr).toMatch(/not the private key of the CA certificate/);
    // a group naming the still unverified CA is accepted, but no device matches it yet
    expect((await cli('group', 'create', 'ca-fleet', '--attestation', 'x509', '--ca-reference', 'fleet-root')).code).toBe(0);
    expect((await runCli(['cert', 'device', '--cn', 'ca-dev-1', '--issuer-cert', 'root.pem', '--issuer-key', 'root-key.pem'], { cwd: dir.path })).code).toBe(0);
    expect(await register('ca-dev-1')).toEqual({ status: 401, errorCode: 401002 });

    const wrongCa = await cli('ca', 'verify', 'fleet-root', '--ca-key', 'other-key.pem', '--ca-certificate', 'other.pem');
    expect(wrongCa.code).toBe(1);
    expect(wrongCa.stderr).toMatch(/not the certificate registered as 'fleet-root'/);

    const verified = await cli('ca', 'verify', 'fleet-root', '--ca-key', 'root-key.pem', '--ca-certificate', 'root.pem');
    expect(verified.stderr).toBe('');
    expect(verified.code).toBe(0);
    expect(json(verified.stdout).properties).toMatchObject({ isVerified: true, thumbprint });
    expect(json(verified.stdout).properties.verificationCode).toBeUndefined();

    const listed = await cli('ca', 'list');
    expect(listed.code).toBe(0);
    expect(json(listed.stdout).map((ca: { name: string; properties: { isVerified: boolean } }) => [ca.name, ca.properties.isVerified])).toEqual([
      ['fleet-root', true],
    ]);

    const group = await cli('group', 'create', 'ca-fleet', '--attestation', 'x509', '--ca-reference', 'fleet-root');
    expect(group.stderr).toBe('');
    expect(group.code).toBe(0);
    expect(json(group.stdout)).toMatchObject({ enrollmentGroupId: 'ca-fleet', attestation: { type: 'x509', x509: { caReferences: { primary: 'fleet-root' } } } });
    // now the verified CA counts: a device it issued registers through the group
    expect(await register('ca-dev-1')).toEqual({ status: 'assigned' });

    // while the group references it the CA cannot be deleted; the refusal names the group
    const refused = await cli('ca', 'delete', 'fleet-root');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/'ca-fleet'.*errorCode 409002, HTTP 409/);
    expect((await cli('group', 'delete', 'ca-fleet')).code).toBe(0);
    const deleted = await cli('ca', 'delete', 'fleet-root');
    expect(deleted.code).toBe(0);
    expect(deleted.stdout).toContain("Deleted CA certificate 'fleet-root'");
    const gone = await cli('ca', 'show', 'fleet-root');
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/errorCode 404206, HTTP 404/);
  });

  it('verifies with a proof file made by `opendps cert device`, and refuses a proof signed by another CA', async () => {
    expect((await cli('ca', 'add', 'second', '--certificate', 'other.pem')).code).toBe(0);
    // no code pending yet: a proof cannot be checked
    const early = await cli('ca', 'verify', 'second', '--certificate', 'other.pem');
    expect(early.code).toBe(1);
    expect(early.stderr).toMatch(/errorCode 400016, HTTP 400/);

    const code = json((await cli('ca', 'verification-code', 'second')).stdout).properties.verificationCode as string;
    const shown = await cli('ca', 'show', 'second');
    expect(json(shown.stdout).properties).toMatchObject({ verificationCode: code, isVerified: false });

    const forged = await runCli(['cert', 'device', '--cn', code, '--issuer-cert', 'root.pem', '--issuer-key', 'root-key.pem', '--out', 'forged'], { cwd: dir.path });
    expect(forged.code).toBe(0);
    const refused = await cli('ca', 'verify', 'second', '--certificate', 'forged.pem');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/not signed by the CA.*errorCode 400005, HTTP 400/);
    expect(json((await cli('ca', 'show', 'second')).stdout).properties.isVerified).toBe(false);

    const proof = await runCli(['cert', 'device', '--cn', code, '--issuer-cert', 'other.pem', '--issuer-key', 'other-key.pem', '--out', 'proof'], { cwd: dir.path });
    expect(proof.code).toBe(0);
    const verified = await cli('ca', 'verify', 'second', '--certificate', 'proof.pem');
    expect(verified.stderr).toBe('');
    expect(json(verified.stdout).properties.isVerified).toBe(true);
    // single use: the same proof again finds no pending code
    expect((await cli('ca', 'verify', 'second', '--certificate', 'proof.pem')).stderr).toMatch(/errorCode 400016/);
    expect((await cli('ca', 'delete', 'second')).code).toBe(0);
  });

  it('works with only --connection-string, --ca-file and --endpoint (no data dir)', async () => {
    const { connection } = server;
    const remote = (...args: string[]) =>
      runCli([...args, '--connection-string', connection.serviceConnectionString, '--ca-file', connection.caFile, '--endpoint', connection.endpoints.https], {
        cwd: dir.path,
      });
    expect((await remote('ca', 'add', 'remote', '--certificate', 'root.pem')).code).toBe(0);
    const verified = await remote('ca', 'verify', 'remote', '--ca-key', 'root-key.pem');
    expect(verified.stderr).toBe('');
    expect(json(verified.stdout).properties.isVerified).toBe(true);
    expect(json((await remote('ca', 'list')).stdout).map((ca: { name: string }) => ca.name)).toEqual(['remote']);
    expect((await remote('ca', 'delete', 'remote')).code).toBe(0);
  });
});

describe('opendps ca command line', () => {
  it('explains itself and refuses wrong command lines with exit 2', async () => {
    const io = captureIo(process.cwd());
    expect(await main(['ca', '--help'], io)).toBe(0);
    for (const command of ['add', 'verification-code', 'verify', 'list', 'show', 'delete']) expect(io.stdout.join('')).toContain(`  ${command}`);
    expect(await main(['--help'], io)).toBe(0);
    expect(io.stdout.join('')).toMatch(/\n {2}ca +Manage CA certificates/);

    const help = captureIo(process.cwd());
    expect(await main(['ca', 'verify', '--help'], help)).toBe(0);
    expect(help.stdout.join('')).toContain('Usage: opendps ca verify <name> (--certificate PROOF_FILE | --ca-key CA_KEY_FILE [--ca-certificate CA_FILE])');

    const dir = tempDir('opendps-ca-usage-');
    try {
      const refusals: Array<[string[], RegExp]> = [
        [['ca', 'verify', 'x', '--certificate', 'a.pem', '--ca-key', 'k.pem'], /either --certificate or --ca-key/],
        [['ca', 'verify', 'x'], /--certificate PROOF_FILE or --ca-key CA_KEY_FILE is required/],
        [['ca', 'verify', 'x', '--certificate', 'a.pem', '--ca-certificate', 'c.pem'], /--ca-certificate goes with --ca-key/],
        [['ca', 'add', 'x'], /--certificate FILE is required/],
        [['ca', 'add'], /Missing argument/],
        [['ca', 'show', 'a', 'b'], /Unexpected argument 'b'/],
        [['ca', 'frob'], /Unknown command 'opendps ca frob'/],
      ];
      for (const [argv, message] of refusals) {
        const io2 = captureIo(dir.path);
        expect(await main([...argv, '--data-dir', dir.path], io2)).toBe(2);
        expect(io2.stderr.join('')).toMatch(message);
      }
    } finally {
      dir.remove();
    }
  });
});
