import { writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { connect as connectTcp } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { connect, type PeerCertificate, type TLSSocket } from 'node:tls';
import { silentLogger } from '@opendps/model';
import { createRootCa, createServerCertificate } from '@opendps/pki';
import { createServer, type RunningServer } from '../src';
import { tempDir } from './support';

const ports = { https: 0, mqtt: 0, amqp: 0, hub: 0 };
const portOf = (hostName: string | null): number => Number(hostName?.split(':').pop());

/** Whether a TCP connection to address:port is accepted. */
function reachable(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connectTcp({ host: address, port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

/** The certificate a new TLS connection to localhost:port is served (trusting `ca`). */
function servedCertificate(port: number, ca: string): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket: TLSSocket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      const certificate = socket.getPeerCertificate();
      socket.destroy();
      resolve(certificate);
    });
    socket.on('error', reject);
  });
}

describe('--bind', () => {
  const dir = tempDir();
  let server: RunningServer | undefined;
  afterAll(async () => {
    await server?.stop();
    dir.remove();
  });

  it('binds every listener (HTTPS, MQTT, AMQP, the built-in hub) to loopback IPv4 by default: not ::1, not the machine address', async () => {
    server = await createServer({ dataDir: dir.path, ports, logger: silentLogger });
    const { https, mqtt, amqp, hubs } = server.endpoints;
    const listening = [portOf(https), portOf(mqtt), portOf(amqp), ...hubs.map(portOf)];
    expect(listening).toHaveLength(4);
    const external = Object.values(networkInterfaces())
      .flat()
      .find((address) => address && !address.internal && address.family === 'IPv4')?.address;
    for (const port of listening) {
      expect(await reachable('127.0.0.1', port)).toBe(true);
      expect(await reachable('::1', port)).toBe(false);
      if (external) expect(await reachable(external, port)).toBe(false);
    }
  });
});

describe('--tls-cert and --tls-key', () => {
  const dir = tempDir();
  const certFile = join(dir.path, 'tls.pem');
  const keyFile = join(dir.path, 'tls-key.pem');
  const operatorCa = createRootCa({ commonName: 'Example Corp Root', organization: 'Example Corp' });
  const first = createServerCertificate(operatorCa, ['localhost', '127.0.0.1']);
  const second = createServerCertificate(operatorCa, ['localhost', '127.0.0.1']);
  let server: RunningServer | undefined;
  afterAll(async () => {
    await server?.stop();
    dir.remove();
  });

  const install = (issued: { certificatePem: string; privateKeyPem: string }): void => {
    // Certificate with its chain, as operators deploy it.
    writeFileSync(certFile, `${issued.certificatePem.trim()}\n${operatorCa.certificatePem}`);
    writeFileSync(keyFile, issued.privateKeyPem);
  };
  const fingerprintOf = (pem: string): string => new (require('node:crypto').X509Certificate)(pem).fingerprint256 as string;

  it('serves the operator certificate on every listener and follows a change of the files, keeping established connections', async () => {
    install(first);
    server = await createServer({ dataDir: dir.path, ports, logger: silentLogger, tls: { cert: certFile, key: keyFile }, timeouts: { tlsPollMs: 50 } });
    const running = server;
    const listening = [running.endpoints.https, running.endpoints.mqtt, running.endpoints.amqp, ...running.endpoints.hubs].map(portOf);
    for (const port of listening) {
      expect((await servedCertificate(port, operatorCa.certificatePem)).fingerprint256).toBe(fingerprintOf(first.certificatePem));
    }

    // An established HTTPS keep-alive connection, made before the change.
    const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: operatorCa.certificatePem });
    const get = (): Promise<{ status: number; reused: boolean; fingerprint: string }> =>
      new Promise((resolve, reject) => {
        const req = request({ host: '127.0.0.1', servername: 'localhost', port: portOf(running.endpoints.https), path: '/nothing', agent }, (res) => {
          const fingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket, fingerprint }));
        });
        req.on('error', reject);
        req.end();
      });
    const before = await get();
    expect(before).toMatchObject({ status: 404, reused: false, fingerprint: fingerprintOf(first.certificatePem) });

    install(second);
    const deadline = Date.now() + 10_000;
    let served = '';
    while (Date.now() < deadline) {
      served = (await servedCertificate(portOf(running.endpoints.https), operatorCa.certificatePem)).fingerprint256;
      if (served === fingerprintOf(second.certificatePem)) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(served).toBe(fingerprintOf(second.certificatePem));
    for (const port of listening) {
      expect((await servedCertificate(port, operatorCa.certificatePem)).fingerprint256).toBe(fingerprintOf(second.certificatePem));
    }
    // The old connection is still up, on the old certificate.
    expect(await get()).toEqual({ status: 404, reused: true, fingerprint: fingerprintOf(first.certificatePem) });
    agent.destroy();
  });

  it('keeps the current certificate when the files change to an unusable pair, and reloadTls (SIGHUP) applies a fixed one', async () => {
    const running = server as RunningServer;
    writeFileSync(keyFile, operatorCa.privateKeyPem); // the key of another certificate
    expect(running.reloadTls()).toBe(false);
    expect((await servedCertificate(portOf(running.endpoints.mqtt), operatorCa.certificatePem)).fingerprint256).toBe(fingerprintOf(second.certificatePem));
    install(first);
    expect(running.reloadTls()).toBe(true);
    expect((await servedCertificate(portOf(running.endpoints.mqtt), operatorCa.certificatePem)).fingerprint256).toBe(fingerprintOf(first.certificatePem));
  });

  it('refuses to start on an unusable pair, naming the files and why', async () => {
    const other = tempDir();
    try {
      writeFileSync(join(other.path, 'k.pem'), operatorCa.privateKeyPem);
      await expect(
        createServer({ dataDir: other.path, ports, logger: silentLogger, tls: { cert: certFile, key: join(other.path, 'k.pem') } }),
      ).rejects.toThrow(/--tls-cert .*tls\.pem and --tls-key .*k\.pem cannot be used: the key does not match the certificate/);
    } finally {
      other.remove();
    }
  });
});
