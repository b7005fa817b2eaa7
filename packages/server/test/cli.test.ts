import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../src/cli/main';
import { captureIo, runCli, startCliServer, tempDir, type CliServer } from './support';

/** Needs the built CLI: `npx tsc -b packages/server` (the root `pnpm test` builds first). */
describe('opendps CLI against a spawned `opendps start`', () => {
  const dir = tempDir();
  const dataDir = join(dir.path, 'data');
  let server: CliServer;
  beforeAll(async () => {
    server = await startCliServer(dataDir);
  });
  afterAll(async () => {
    if (server.child.exitCode === null) await server.stop();
    dir.remove();
  });

  const cli = (...args: string[]) => runCli([...args, '--data-dir', dataDir], { cwd: dir.path });

  it('wrote connection.json with the real port, before logging ready', () => {
    const { connection } = server;
    expect(connection.endpoints.https).toMatch(/^localhost:\d+$/);
    expect(connection.endpoints.https).not.toBe('localhost:0');
    expect(connection.caFile).toBe(join(dataDir, 'ca.pem'));
    expect(connection.serviceConnectionString).toMatch(/^HostName=localhost;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=/);
    const lines = server.stdout().trim().split('\n').map((line) => JSON.parse(line));
    expect(lines.every((line) => line.category === 'ServiceOperations' || line.category === 'DeviceOperations')).toBe(true);
    expect(server.stdout()).not.toContain(connection.serviceConnectionString.split('SharedAccessKey=')[1]);
  });

  it('creates, shows, lists and deletes individual enrollments', async () => {
    const twin = JSON.stringify({ tags: { site: 'lab' }, properties: { desired: { interval: 5 } } });
    const created = await cli('enrollment', 'create', 'sensor-1', '--primary-key', Buffer.alloc(32, 7).toString('base64'),
      '--secondary-key', Buffer.alloc(32, 8).toString('base64'), '--device-id', 'sensor-one', '--initial-twin', twin,
      '--provisioning-status', 'disabled', '--reprovision-policy', 'reprovisionAndResetData', '--iot-edge');
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({
      registrationId: 'sensor-1',
      deviceId: 'sensor-one',
      provisioningStatus: 'disabled',
      capabilities: { iotEdge: true },
      reprovisionPolicy: { updateHubAssignment: true, migrateDeviceData: false },
      initialTwin: { tags: { site: 'lab' }, properties: { desired: { interval: 5 } } },
      attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: Buffer.alloc(32, 7).toString('base64') } },
    });
    expect((await cli('enrollment', 'create', 'sensor-2')).code).toBe(0);

    const shown = await cli('enrollment', 'show', 'sensor-1');
    expect(shown.code).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({ registrationId: 'sensor-1', deviceId: 'sensor-one' });

    // Page size 1 makes the CLI follow continuation tokens.
    const listed = await cli('enrollment', 'list', '--page-size', '1');
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout).map((item: { registrationId: string }) => item.registrationId)).toEqual(['sensor-1', 'sensor-2']);

    const deleted = await cli('enrollment', 'delete', 'sensor-1');
    expect(deleted.code).toBe(0);
    expect(deleted.stdout).toContain("Deleted individual enrollment 'sensor-1'");

    const gone = await cli('enrollment', 'show', 'sensor-1');
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/errorCode 404201, HTTP 404/);
  });

  it('prints the DPS message and errorCode of a refused write', async () => {
    const refused = await cli('enrollment', 'create', 'bad-key', '--primary-key', 'c2hvcnQ=');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/errorCode 400006, HTTP 400/);
  });

  it('manages enrollment groups with X.509 signing certificates made by `opendps cert`', async () => {
    const root = await runCli(['cert', 'root', '--out', join(dir.path, 'group-root')]);
    expect(root.code).toBe(0);
    const created = await cli('group', 'create', 'fleet-a', '--certificate', join(dir.path, 'group-root.pem'), '--allocation-policy', 'hashed');
    expect(created.stderr).toBe('');
    expect(JSON.parse(created.stdout)).toMatchObject({
      enrollmentGroupId: 'fleet-a',
      allocationPolicy: 'hashed',
      attestation: { type: 'x509', x509: { signingCertificates: { primary: { info: { subjectName: expect.stringContaining('OpenDPS Test Root CA') } } } } },
    });
    expect((await cli('group', 'list')).stdout).toContain('"enrollmentGroupId": "fleet-a"');
    expect((await cli('group', 'delete', 'fleet-a')).code).toBe(0);
    expect((await cli('group', 'show', 'fleet-a')).code).toBe(1);
  });

  it('talks to a server given only --connection-string, --ca-file and --endpoint', async () => {
    const { connection } = server;
    const remote = await runCli(
      ['enrollment', 'list', '--connection-string', connection.serviceConnectionString, '--ca-file', connection.caFile, '--endpoint', connection.endpoints.https],
      { cwd: dir.path },
    );
    expect(remote.code).toBe(0);
    expect(JSON.parse(remote.stdout).map((item: { registrationId: string }) => item.registrationId)).toContain('sensor-2');
    const untrusted = await runCli(['enrollment', 'list', '--connection-string', connection.serviceConnectionString, '--endpoint', connection.endpoints.https], { cwd: dir.path });
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(/cannot reach .*(SELF_SIGNED|UNABLE_TO|CERT)/);
  });

  it('exits 0 on SIGTERM', async () => {
    expect(await server.stop()).toBe(0);
  });
});

describe('opendps start wiring', () => {
  it('takes the config file, OPENDPS_* variables and flags together', async () => {
    const dir = tempDir();
    try {
      const configFile = join(dir.path, 'opendps.yaml');
      writeFileSync(configFile, ['host: file.invalid', 'instances:', '  - name: plant-7', '    idScope: 0ne00C0FFEE', ''].join('\n'));
      const server = await startCliServer(join(dir.path, 'data'), ['--config', configFile], { OPENDPS_HOST: '127.0.0.1' });
      try {
        expect(server.connection.idScope).toBe('0ne00C0FFEE');
        expect(server.connection.instances.map((instance) => instance.name)).toEqual(['plant-7']);
        expect(server.connection.endpoints.https).toMatch(/^127\.0\.0\.1:[1-9]\d*$/);
        expect(server.connection.serviceConnectionString).toMatch(/^HostName=127\.0\.0\.1;/);
        const listed = await runCli(['enrollment', 'list', '--data-dir', join(dir.path, 'data')]);
        expect(listed).toMatchObject({ code: 0, stdout: '[]\n' });
      } finally {
        expect(await server.stop()).toBe(0);
      }
    } finally {
      dir.remove();
    }
  });
});

describe('opendps cert', () => {
  const dir = tempDir();
  afterAll(() => dir.remove());
  const run = async (...args: string[]) => {
    const io = captureIo(dir.path);
    const code = await main(args, io);
    return { code, stdout: io.stdout.join(''), stderr: io.stderr.join('') };
  };
  const certificate = (file: string) => new X509Certificate(readFileSync(join(dir.path, file)));

  it('writes a root, an intermediate and a device chain that verify with node:crypto', async () => {
    expect((await run('cert', 'root', '--cn', 'Test Root', '--out', 'root')).code).toBe(0);
    expect((await run('cert', 'intermediate', '--issuer-cert', 'root.pem', '--issuer-key', 'root-key.pem', '--out', 'mid')).code).toBe(0);
    const device = await run('cert', 'device', '--cn', 'dev-42', '--issuer-cert', 'mid-chain.pem', '--issuer-key', 'mid-key.pem', '--days', '30');
    expect(device.code).toBe(0);
    expect(JSON.parse(device.stdout).device).toEqual({
      certificate: join(dir.path, 'dev-42.pem'),
      key: join(dir.path, 'dev-42-key.pem'),
      chain: join(dir.path, 'dev-42-chain.pem'),
    });
    const root = certificate('root.pem');
    const mid = certificate('mid.pem');
    const leaf = certificate('dev-42.pem');
    expect(root.ca && root.subject).toContain('CN=Test Root');
    expect(mid.ca).toBe(true);
    expect(mid.verify(root.publicKey)).toBe(true);
    expect(leaf.ca).toBe(false);
    expect(leaf.subject).toContain('CN=dev-42');
    expect(leaf.verify(mid.publicKey)).toBe(true);
    expect(Date.parse(leaf.validTo) - Date.now()).toBeLessThan(31 * 24 * 3600_000);
    // The chain file is device, intermediate, root: what a device presents.
    const chain = readFileSync(join(dir.path, 'dev-42-chain.pem'), 'utf8').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
    expect(chain.map((pem) => new X509Certificate(pem).subject)).toEqual([leaf.subject, mid.subject, root.subject]);
    expect(statSync(join(dir.path, 'dev-42-key.pem')).mode & 0o777).toBe(0o600);
  });

  it('writes a self-signed device certificate without an issuer', async () => {
    expect((await run('cert', 'device', '--cn', 'solo')).code).toBe(0);
    const solo = certificate('solo.pem');
    expect(solo.verify(solo.publicKey)).toBe(true);
  });

  it('writes a fleet of N devices under one intermediate', async () => {
    const result = await run('cert', 'fleet', '--count', '3', '--out-dir', 'fleet', '--prefix', 'car');
    expect(result.code).toBe(0);
    const summary = JSON.parse(result.stdout);
    expect(summary.devices.map((device: { registrationId: string }) => device.registrationId)).toEqual(['car-1', 'car-2', 'car-3']);
    const root = certificate('fleet/root-ca.pem');
    const mid = certificate('fleet/intermediate-ca.pem');
    expect(mid.verify(root.publicKey)).toBe(true);
    for (const name of ['car-1', 'car-2', 'car-3']) {
      const device = certificate(`fleet/${name}.pem`);
      expect(device.subject).toContain(`CN=${name}`);
      expect(device.verify(mid.publicKey)).toBe(true);
      expect(device.checkPrivateKey(require('node:crypto').createPrivateKey(readFileSync(join(dir.path, `fleet/${name}-key.pem`))))).toBe(true);
    }
  });

  it.each([
    [['cert', 'fleet'], /--count must be a number/],
    [['cert', 'fleet', '--count', '0'], /--count must be a number/],
    [['cert', 'device'], /--cn is required/],
    [['cert', 'device', '--cn', 'bad/id'], /not a valid registration id/],
    [['cert', 'intermediate'], /--issuer-cert and --issuer-key are required/],
    [['cert', 'device', '--cn', 'x', '--issuer-cert', 'root.pem'], /go together/],
    [['cert', 'root', '--days', 'many'], /--days must be a number/],
  ])('refuses %j with usage and exit 2', async (args, message) => {
    const result = await run(...args);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toContain('Usage: opendps cert');
  });
});

describe('opendps key derive', () => {
  it('matches the documented vector (built CLI)', async () => {
    const result = await runCli([
      'key', 'derive',
      '--group-key', '8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==',
      '--registration-id', 'sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6',
    ]);
    expect(result).toEqual({ code: 0, stdout: 'Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=\n', stderr: '' });
  });

  it('refuses a key that is not base64', async () => {
    const io = captureIo('/');
    expect(await main(['key', 'derive', '--group-key', 'not base64!', '--registration-id', 'r'], io)).toBe(2);
    expect(io.stderr.join('')).toMatch(/--group-key: The group key is not base64/);
  });
});

describe('opendps usage', () => {
  const run = async (...args: string[]) => {
    const io = captureIo('/');
    const code = await main(args, io);
    return { code, stdout: io.stdout.join(''), stderr: io.stderr.join('') };
  };

  it('has help on every command and subcommand', async () => {
    const top = await run('--help');
    expect(top.code).toBe(0);
    for (const name of ['start', 'enrollment', 'group', 'cert', 'key']) expect(top.stdout).toContain(`  ${name}`);
    const commands: string[][] = [
      ['start'],
      ...['create', 'show', 'list', 'delete'].flatMap((sub) => [['enrollment', sub], ['group', sub]]),
      ...['root', 'intermediate', 'device', 'fleet'].map((sub) => ['cert', sub]),
      ['key', 'derive'],
    ];
    for (const command of commands) {
      const help = await run(...command, '--help');
      expect(help.code).toBe(0);
      expect(help.stdout).toContain(`Usage: opendps ${command.join(' ')}`);
    }
    for (const group of ['enrollment', 'group', 'cert', 'key']) expect((await run(group, '--help')).stdout).toContain('Commands:');
    const create = await run('enrollment', 'create', '--help');
    for (const flag of ['--attestation', '--primary-key', '--certificate', '--endorsement-key', '--iot-hub', '--initial-twin',
      '--provisioning-status', '--device-id', '--allocation-policy', '--connection-string', '--ca-file', '--endpoint']) {
      expect(create.stdout).toContain(flag);
    }
  });

  it.each([
    [[], /A command is required/],
    [['launch'], /Unknown command 'launch'/],
    [['enrollment'], /'opendps enrollment' needs a subcommand/],
    [['enrollment', 'explode'], /Unknown command 'opendps enrollment explode'/],
    [['start', '--verbose'], /Unknown option '--verbose'/],
    [['enrollment', 'show'], /Missing argument/],
    [['enrollment', 'show', 'a', 'b'], /Unexpected argument 'b'/],
    [['enrollment', 'create', 'x', '--attestation', 'x509'], /needs --certificate/],
    [['enrollment', 'create', 'x', '--attestation', 'tpm', '--primary-key', 'a2V5'], /--primary-key does not go with --attestation tpm/],
    [['enrollment', 'create', 'x', '--provisioning-status', 'paused'], /--provisioning-status must be one of enabled, disabled/],
    [['enrollment', 'create', 'x', '--initial-twin', '{'], /--initial-twin is not valid JSON/],
    [['enrollment', 'list', '--data-dir', '/nonexistent-opendps'], /No service connection string/],
  ])('refuses %j with usage and exit 2', async (args, message) => {
    const result = await run(...args);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toContain('Usage: opendps');
  });

  it('exits 2 on an unknown flag in the built CLI too', async () => {
    const result = await runCli(['enrollment', 'list', '--frobnicate']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("Unknown option '--frobnicate'");
  });
});
