// Holds `count` MQTT/TLS connections to the DPS listener, each CONNECTed and SUBSCRIBEd to the
// response topic (QoS 1, as the SDKs), then idles until told to stop (SIGTERM). A lean client
// (node:tls and hand-encoded MQTT 3.1.1 packets) so that the client is never the bottleneck.
//   attestation 'sas' (default): a SAS of a key derived from the group key, as the CONNECT password.
//   attestation 'x509': a device certificate issued on the fly by the CA (caCertFile, caKeyFile)
//     in the TLS handshake, and no password.
//   register: true: the device registers (and polls until assigned) before it idles.
// Prints one line `held <n> <failed>` once every connection is idle or has failed.
import { Buffer } from 'node:buffer';
import { readFileSync } from 'node:fs';
import process from 'node:process';
import tls from 'node:tls';
import { setInterval } from 'node:timers';
import attestation from '../../attestation/dist/index.js';
import x509 from '../../packages/loadgen/dist/x509.js';

const spec = JSON.parse(process.argv[2] ?? '{}');
const { host, port, caFile, idScope, key, count, concurrency = 64, register = false, prefix = 'idle' } = spec;
const ca = readFileSync(caFile);
const issuer = spec.attestation === 'x509' ? x509.createDeviceCertificateIssuer(readFileSync(spec.caCertFile, 'utf8'), readFileSync(spec.caKeyFile, 'utf8')) : undefined;
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
  const username = string(`${resource}/api-version=2019-03-31`);
  if (issuer) {
    // flags: user name, clean session; no password (the proof is the TLS client certificate)
    const header = Buffer.concat([string('MQTT'), Buffer.from([4, 0x82, 0x01, 0x2c])]);
    return packet(0x10, Buffer.concat([header, string(registrationId), username]));
  }
  const password = attestation.createSasToken({ resource, key: attestation.deriveDeviceKey(key, registrationId), keyName: 'registration', expiry: Math.floor(Date.now() / 1000) + 7200 });
  const header = Buffer.concat([string('MQTT'), Buffer.from([4, 0xc2, 0x01, 0x2c])]);
  return packet(0x10, Buffer.concat([header, string(registrationId), username, string(password)]));
}

const subscribe = packet(0x82, Buffer.concat([Buffer.from([0, 1]), string('$dps/registrations/res/#'), Buffer.from([1])]));

function publish(packetId, topic, payload) {
  return packet(0x32, Buffer.concat([string(topic), Buffer.from([packetId >> 8, packetId & 0xff]), Buffer.from(payload)]));
}

/** Splits what arrived into MQTT packets: [first byte, body] each; the rest stays buffered. */
function* packets(state) {
  for (;;) {
    const bytes = state.buffer;
    let length = 0;
    let at = 1;
    for (let multiplier = 1; ; multiplier *= 128) {
      if (at >= bytes.length) return;
      const byte = bytes[at++];
      length += (byte & 0x7f) * multiplier;
      if (!(byte & 0x80)) break;
    }
    if (bytes.length < at + length) return;
    state.buffer = bytes.subarray(at + length);
    yield [bytes[0], bytes.subarray(at, at + length)];
  }
}

function open(index) {
  return new Promise((resolve) => {
    const registrationId = `${prefix}-${index}`;
    const credentials = issuer ? issuer.issue(registrationId) : {};
    const socket = tls.connect({ host, port, ca, servername: host, ...credentials });
    const state = { buffer: Buffer.alloc(0) };
    let done = false;
    let nextId = 2;
    const finish = (ok) => {
      if (done) return;
      done = true;
      if (!ok) failed += 1;
      resolve();
    };
    const request = (topic, payload) => socket.write(publish(nextId++, topic, payload));
    socket.once('secureConnect', () => socket.write(Buffer.concat([connectPacket(registrationId), subscribe])));
    socket.on('data', (chunk) => {
      state.buffer = Buffer.concat([state.buffer, chunk]);
      for (const [first, body] of packets(state)) {
        const type = first >> 4;
        if (type === 2 && body[1] !== 0) {
          if (process.env.SCALE_DEBUG) process.stderr.write(`CONNACK ${body[1]}\n`);
          return finish(false); // CONNACK refused
        }
        if (type === 9) {
          // SUBACK: idle now, or register first
          if (body[2] === 0x80) return finish(false);
          if (!register) return finish(true);
          request(`$dps/registrations/PUT/iotdps-register/?$rid=${index}`, JSON.stringify({ registrationId }));
        }
        if (type === 3) {
          const qos = (first >> 1) & 3;
          const topicLength = body.readUInt16BE(0);
          const topic = body.subarray(2, 2 + topicLength).toString();
          let at = 2 + topicLength;
          if (qos > 0) {
            socket.write(Buffer.from([0x40, 2, body[at], body[at + 1]])); // PUBACK, as the SDKs do
            at += 2;
          }
          const answer = JSON.parse(body.subarray(at).toString() || '{}');
          const status = String(answer.status ?? '').toLowerCase();
          if (status === 'assigned') finish(true);
          else if (status === 'assigning') request(`$dps/registrations/GET/iotdps-get-operationstatus/?$rid=${index}&operationId=${answer.operationId}`, ' ');
          else {
            if (process.env.SCALE_DEBUG) process.stderr.write(`${topic} ${JSON.stringify(answer)}\n`);
            finish(false);
          }
        }
      }
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
