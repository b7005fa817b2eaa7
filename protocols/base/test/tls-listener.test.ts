import { connect } from 'node:net';
import { silentLogger } from '@opendps/model';
import { createRootCa, createServerCertificate } from '@opendps/pki';
import { listenTls } from '../src';

const ca = createRootCa({ commonName: 'tls-listener test CA' });
const server = createServerCertificate(ca, ['localhost', '127.0.0.1']);

test('a TCP client that never completes the TLS handshake is closed after the handshake timeout', async () => {
  const listener = await listenTls(
    { port: 0, host: '127.0.0.1', tls: { cert: server.certificatePem, key: server.privateKeyPem }, handshakeTimeoutMs: 300, logger: silentLogger, name: 'test' },
    () => undefined,
  );
  try {
    const silent = connect(listener.port, '127.0.0.1');
    const partial = connect(listener.port, '127.0.0.1', () => partial.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x50])));
    const closedByServer = (socket: typeof silent) =>
      new Promise<boolean>((resolve) => {
        socket.on('error', () => undefined);
        socket.once('close', () => resolve(true));
      });
    expect(await Promise.all([closedByServer(silent), closedByServer(partial)])).toEqual([true, true]);
  } finally {
    await listener.close();
  }
});
