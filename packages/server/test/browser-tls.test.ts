import { X509Certificate } from 'node:crypto';
import { connect as connectTls, type SecureVersion, type TLSSocket } from 'node:tls';
import { silentLogger } from '@opendps/model';
import { createLeaf, createRootCa, createServerCertificate } from '@opendps/pki';
import { createHttpsListener } from '../src';
import { withBrowserHost } from '../src/pki/browser-tls';
import { hubSniCallback } from '../src/pki/hub-certificates';

const ca = createRootCa({ commonName: 'browser TLS test CA' });
const server = createServerCertificate(ca, ['localhost']);
// A client certificate is sent only when the server asks for one: what the server sees tells whether it asked.
const device = createLeaf(createRootCa({ commonName: 'device CA' }), { commonName: 'device-1' });
const BROWSER = 'browser.localhost';

const listener = createHttpsListener({
  port: 0,
  bindAddress: '127.0.0.1',
  key: server.privateKeyPem,
  cert: server.certificatePem,
  SNICallback: withBrowserHost(hubSniCallback({ ca, server, isHubHost: (name) => name === BROWSER }), BROWSER),
  logger: silentLogger,
  routes: [
    {
      matches: () => true,
      async handle(req, res) {
        const peer = (req.socket as TLSSocket).getPeerCertificate();
        res.end(JSON.stringify({ clientCn: peer.subject?.CN ?? null }));
      },
    },
  ],
});
let port = 0;
beforeAll(async () => {
  port = await listener.start();
});
afterAll(() => listener.stop());

/** One request over a TLS connection naming `servername`, presenting the device certificate if asked. */
function ask(servername: string, version: SecureVersion): Promise<{ clientCn: string | null; serverCert: X509Certificate }> {
  return new Promise((resolve, reject) => {
    const socket = connectTls(
      { host: '127.0.0.1', port, servername, ca: ca.certificatePem, cert: device.certificatePem, key: device.privateKeyPem, minVersion: version, maxVersion: version },
      () => {
        const serverCert = new X509Certificate(socket.getPeerX509Certificate()?.raw ?? Buffer.alloc(0));
        socket.write(`GET / HTTP/1.1\r\nhost: ${servername}\r\nconnection: close\r\n\r\n`);
        let text = '';
        socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
        socket.on('end', () => resolve({ ...JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)), serverCert }));
      },
    );
    socket.on('error', reject);
  });
}

describe.each(['TLSv1.3', 'TLSv1.2'] as const)('over %s', (version) => {
  it('asks a client naming any other host for its certificate (X.509 devices)', async () => {
    expect((await ask('localhost', version)).clientCn).toBe('device-1');
  });

  it('does not ask a client naming the browser host, and serves it a certificate for that name from the CA', async () => {
    const answer = await ask(BROWSER, version);
    expect(answer.clientCn).toBeNull();
    expect(answer.serverCert.checkHost(BROWSER)).toBe(BROWSER);
    expect(answer.serverCert.verify(new X509Certificate(ca.certificatePem).publicKey)).toBe(true);
  });

  it('matches the browser host case-insensitively and still asks the next client for its certificate', async () => {
    expect((await ask('BROWSER.localhost', version)).clientCn).toBeNull();
    expect((await ask('localhost', version)).clientCn).toBe('device-1');
  });
});
