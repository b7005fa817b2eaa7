import https from 'node:https';
import tls from 'node:tls';
import { createSasToken } from '@opendps/attestation';
import { parseConnectionString } from '@opendps/model';
import { connect, DISCONNECT, publish, subscribe } from './corpus/mqtt';
import { splitHostPort, type Target } from './target';

/** The device the fuzzer registers after every batch to prove the service still does its job. */
export const PROBE_REGISTRATION_ID = 'fuzz-probe';
export const PROBE_KEY = Buffer.alloc(32, 7).toString('base64');

export function serviceToken(target: Target): string {
  const fields = parseConnectionString(target.connection.serviceConnectionString);
  return createSasToken({
    resource: fields.HostName ?? 'localhost',
    key: fields.SharedAccessKey ?? '',
    keyName: fields.SharedAccessKeyName ?? '',
    expiry: Math.floor(Date.now() / 1000) + 24 * 3600,
    encodeResource: true,
  });
}

export function deviceToken(target: Target): string {
  return createSasToken({
    resource: `${target.connection.idScope}/registrations/${PROBE_REGISTRATION_ID}`,
    key: PROBE_KEY,
    keyName: 'registration',
    expiry: Math.floor(Date.now() / 1000) + 24 * 3600,
  });
}

/** The probe device's token for the built-in hub it is assigned to (it has the enrollment's key there). */
export function hubDeviceToken(target: Target, hubHost: string): string {
  return createSasToken({ resource: `${hubHost}/devices/${PROBE_REGISTRATION_ID}`, key: PROBE_KEY, expiry: Math.floor(Date.now() / 1000) + 24 * 3600, encodeResource: true });
}

/** The built-in hub's owner token (its connection string in connection.json), for its REST API. */
export function hubServiceToken(target: Target): string {
  const hub = target.connection.instances?.[0]?.linkedHubs?.find((linked) => linked.connectionString);
  if (!hub?.connectionString) return 'SharedAccessSignature sr=none&sig=none&se=0';
  const fields = parseConnectionString(hub.connectionString);
  return createSasToken({
    resource: fields.HostName ?? hub.hostName,
    key: fields.SharedAccessKey ?? '',
    keyName: fields.SharedAccessKeyName ?? '',
    expiry: Math.floor(Date.now() / 1000) + 24 * 3600,
    encodeResource: true,
  });
}

/** Creates (or replaces) the probe's symmetric-key enrollment through the service API. */
export function createProbeEnrollment(target: Target): Promise<void> {
  const { host, port } = splitHostPort(target.connection.endpoints.https);
  const body = JSON.stringify({
    registrationId: PROBE_REGISTRATION_ID,
    attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: PROBE_KEY, secondaryKey: PROBE_KEY } },
  });
  return new Promise((resolve, reject) => {
    const request = https.request(
      {
        host,
        port,
        ca: target.ca,
        servername: 'localhost',
        agent: false, // no kept-alive socket to blur the server's fd count
        method: 'PUT',
        path: `/enrollments/${PROBE_REGISTRATION_ID}?api-version=2021-10-01`,
        headers: { authorization: serviceToken(target), 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
        response.on('end', () => {
          const status = response.statusCode ?? 0;
          if (status >= 200 && status < 300) resolve();
          else reject(new Error(`PUT enrollment answered ${status}: ${text}`));
        });
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

/** Splits MQTT packets off a byte stream: [first byte, body] for each complete one. */
export function* mqttPackets(buffer: { data: Buffer }): Generator<[number, Buffer]> {
  for (;;) {
    const { data } = buffer;
    let length = 0;
    let at = 1;
    let multiplier = 1;
    for (;;) {
      if (at >= data.length || at > 4) return;
      const byte = data[at++] as number;
      length += (byte & 0x7f) * multiplier;
      multiplier *= 128;
      if (!(byte & 0x80)) break;
    }
    if (data.length < at + length) return;
    buffer.data = data.subarray(at + length);
    yield [data[0] as number, data.subarray(at, at + length)];
  }
}

/**
 * One registration over raw MQTT/TLS, as the provisioning SDK does it (docs/device-wire.md §2):
 * CONNECT, SUBSCRIBE, register, poll while `assigning`; ok once an answer says `assigned`.
 */
export function probeRegistration(target: Target, timeoutMs: number): Promise<{ ok: boolean; error?: string }> {
  const endpoint = target.connection.endpoints.mqtt;
  if (!endpoint) return Promise.resolve({ ok: false, error: 'the server runs no DPS MQTT listener' });
  const { host, port } = splitHostPort(endpoint);
  const resource = `${target.connection.idScope}/registrations/${PROBE_REGISTRATION_ID}`;
  return new Promise((resolve) => {
    const socket = tls.connect({ host, port, ca: target.ca, servername: 'localhost' });
    let settled = false;
    let pollTimer: NodeJS.Timeout | undefined;
    const finish = (ok: boolean, error?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(pollTimer);
      if (ok) socket.end(DISCONNECT);
      else socket.destroy();
      resolve(ok ? { ok } : { ok, error: error ?? 'failed' });
    };
    const timer = setTimeout(() => finish(false, `no answer within ${timeoutMs} ms`), timeoutMs);
    const buffer = { data: Buffer.alloc(0) };
    let rid = 0;
    socket.on('secureConnect', () => socket.write(connect(PROBE_REGISTRATION_ID, `${resource}/api-version=2019-03-31&ClientVersion=opendps-fuzz`, deviceToken(target))));
    socket.on('data', (chunk: Buffer) => {
      buffer.data = Buffer.concat([buffer.data, chunk]);
      for (const [first, body] of mqttPackets(buffer)) {
        const type = first >> 4;
        if (type === 2) {
          if (body[1] !== 0) return finish(false, `CONNACK return code ${body[1]}`);
          socket.write(subscribe(1, '$dps/registrations/res/#'));
        } else if (type === 9) {
          socket.write(publish(`$dps/registrations/PUT/iotdps-register/?$rid=${++rid}`, JSON.stringify({ registrationId: PROBE_REGISTRATION_ID }), 1, rid));
        } else if (type === 3) {
          const topicLength = body.readUInt16BE(0);
          const topic = body.subarray(2, 2 + topicLength).toString('utf8');
          const qos = (first >> 1) & 3;
          if (qos > 0) socket.write(Buffer.from([0x40, 2, body[2 + topicLength] as number, body[3 + topicLength] as number]));
          const payload = body.subarray(2 + topicLength + (qos > 0 ? 2 : 0)).toString('utf8');
          const match = /^\$dps\/registrations\/res\/(\d+)\/\?(.*)$/.exec(topic);
          if (!match) continue;
          let answer: { status?: string; operationId?: string } = {};
          try {
            answer = JSON.parse(payload) as typeof answer;
          } catch {
            return finish(false, `answer on ${topic} is not JSON`);
          }
          const status = Number(match[1]);
          if (status === 200 && answer.status === 'assigned') return finish(true);
          if ((status === 202 || status === 200) && answer.status === 'assigning' && answer.operationId) {
            const retryAfter = Number(new URLSearchParams(match[2]).get('retry-after') ?? '1');
            const operationId = answer.operationId;
            pollTimer = setTimeout(
              () => socket.write(publish(`$dps/registrations/GET/iotdps-get-operationstatus/?$rid=${++rid}&operationId=${operationId}`, ' ', 1, rid)),
              Math.min(1000, Math.max(50, retryAfter * 1000)),
            );
            continue;
          }
          return finish(false, `status ${status}: ${payload.slice(0, 200)}`);
        }
      }
    });
    socket.on('error', (error) => finish(false, error.message));
    socket.on('close', () => finish(false, 'the server closed the connection'));
  });
}
