// Holds `count` MQTT/TLS connections to the DPS listener, each CONNECTed with a device SAS and
// SUBSCRIBEd to the response topic, then idles until told to stop (SIGTERM). A lean client
// (node:tls and hand-encoded MQTT 3.1.1 packets) so that the client is never the bottleneck.
// Prints one line `held <n> <failed>` once every connection has its SUBACK or has failed.
import { Buffer } from 'node:buffer';
import { readFileSync } from 'node:fs';
import process from 'node:process';
import tls from 'node:tls';
import { setInterval } from 'node:timers';
import attestation from '../../attestation/dist/index.js';

const { host, port, caFile, idScope, key, count, concurrency = 64 } = JSON.parse(process.argv[2] ?? '{}');
const ca = readFileSync(caFile);
const sockets = [];
let failed = 0;

function string(text) {
  const bytes = Buffer.from(text, 'utf8');
  const length = Buffer.alloc(2);
  length.writeUInt16BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

function packet(type, body) {
  const lengthBytes = [];
  let n = body.length;
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    lengthBytes.push(byte);
  } while (n > 0);
  return Buffer.concat([Buffer.from([type, ...lengthBytes]), body]);
}

function connectPacket(registrationId) {
  const resource = `${idScope}/registrations/${registrationId}`;
  const password = attestation.createSasToken({ resource, key: attestation.deriveDeviceKey(key, registrationId), keyName: 'registration', expiry: Math.floor(Date.now() / 1000) + 7200 });
  const header = Buffer.concat([string('MQTT'), Buffer.from([4, 0xc2, 0x01, 0x2c])]);
  return packet(0x10, Buffer.concat([header, string(registrationId), string(`${resource}/api-version=2019-03-31`), string(password)]));
}

const subscribe = packet(0x82, Buffer.concat([Buffer.from([0, 1]), string('$dps/registrations/res/#'), Buffer.from([1])]));

function open(index) {
  return new Promise((resolve) => {
    const socket = tls.connect({ host, port, ca, servername: host });
    let received = Buffer.alloc(0);
    let done = false;
    const finish = (ok) => {
      if (done) return;
      done = true;
      if (!ok) failed += 1;
      resolve();
    };
    socket.once('secureConnect', () => socket.write(Buffer.concat([connectPacket(`idle-${index}`), subscribe])));
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      // CONNACK (4 bytes, return code 0) then SUBACK (5 bytes).
      if (received.length >= 9) finish(received[0] === 0x20 && received[3] === 0 && received[4] === 0x90);
    });
    socket.on('error', () => finish(false));
    socket.on('close', () => finish(false));
    sockets.push(socket);
  });
}

let next = 0;
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (next < count) await open(next++);
  }),
);
process.stdout.write(`held ${count - failed} ${failed}\n`);
process.on('SIGTERM', () => {
  for (const socket of sockets) socket.destroy();
  process.exit(0);
});
setInterval(() => undefined, 1 << 30);
