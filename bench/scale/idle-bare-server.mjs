// The reference for idle.mjs --server bare: a bare `node:tls` server with the listener options
// OpenDPS uses (client certificate requested, not verified; no delay), that reads a client
// certificate chain as OpenDPS does and keeps it, and answers the first bytes of a connection with
// CONNACK and SUBACK. No MQTT parsing, no session: what a TLS connection costs by itself.
//   node bench/scale/idle-bare-server.mjs DATA_DIR   (server.pem, server-key.pem, ca.pem in it)
import { Buffer } from 'node:buffer';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import tls from 'node:tls';

const dataDir = process.argv[2];
const file = (name) => path.join(dataDir, name);
const CONNACK_SUBACK = Buffer.from([0x20, 2, 0, 0, 0x90, 3, 0, 1, 1]);

/** The chain as OpenDPS reads it (packages/model/src/tls.ts): DER, leaf first. */
function peerChain(socket) {
  const chain = [];
  for (let certificate = socket.getPeerCertificate(true); certificate?.raw?.length > 0; certificate = certificate.issuerCertificate) {
    if (chain.some((seen) => seen.equals(certificate.raw))) break;
    chain.push(certificate.raw);
  }
  return chain;
}

const server = tls.createServer(
  { cert: readFileSync(file('server.pem')), key: readFileSync(file('server-key.pem')), requestCert: true, rejectUnauthorized: false, noDelay: true },
  (socket) => {
    const chain = peerChain(socket);
    if (chain.length > 0) socket.peerChain = chain;
    socket.once('data', () => socket.write(CONNACK_SUBACK));
    socket.on('error', () => undefined);
  },
);
server.on('tlsClientError', (_error, socket) => socket.destroy());
server.listen(0, 'localhost', () => {
  const connection = { idScope: '0ne00000000', caFile: file('ca.pem'), endpoints: { mqtt: `localhost:${server.address().port}` } };
  writeFileSync(`${file('connection.json')}.tmp`, JSON.stringify(connection));
  renameSync(`${file('connection.json')}.tmp`, file('connection.json'));
});
