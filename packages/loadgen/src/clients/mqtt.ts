import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { mqttConnection } from './mqtt-connection';
import { API_VERSION, CLIENT_VERSION, dpsToken, registerBody, registrationResource } from './sas';
import { openStream } from './stream';
import { LoadgenError, type Answer, type ClientTarget, type Credentials, type Opened } from './types';

/** DPS over MQTT, TLS or WebSockets, as the Node provisioning client speaks it (docs/device-wire.md §2). */
const RESPONSE_TOPIC = '$dps/registrations/res/#';
/** The `/?` is mandatory (docs/device-wire.md, trap 4). */
const RESPONSE_PATTERN = /^\$dps\/registrations\/res\/(\d+)\/\?(.*)$/;

export async function openMqtt(target: ClientTarget, credentials: Credentials, webSocket: boolean): Promise<Opened> {
  const { stream, tcpTlsMs } = await openStream({
    endpoint: webSocket ? target.https : target.mqtt,
    ca: target.ca,
    credentials,
    ...(webSocket ? { subprotocol: 'mqtt' } : {}),
  });
  const connectStarted = performance.now();
  const connection = mqttConnection(stream);
  const { registrationId } = credentials;
  const waiting = new Map<string, (answer: Answer) => void>();
  let lost: LoadgenError | undefined;
  const losing = new Set<(error: LoadgenError) => void>();
  // A request waiting for its answer fails as soon as the connection does, not at its deadline.
  connection.onFailure((error) => {
    lost = error;
    for (const reject of losing) reject(error);
  });
  connection.onMessage((topic, payload) => {
    const match = RESPONSE_PATTERN.exec(topic);
    if (!match) return;
    const query = new URLSearchParams(match[2]);
    const deliver = waiting.get(query.get('$rid') ?? '');
    if (!deliver) return;
    const retryAfter = Number(query.get('retry-after'));
    let body: unknown;
    try {
      body = JSON.parse(payload.toString('ascii'));
    } catch {
      body = undefined;
    }
    deliver({ status: Number(match[1]), ...(query.has('retry-after') && retryAfter >= 0 ? { retryAfterMs: retryAfter * 1000 } : {}), body });
  });
  try {
    await connection.connect({
      clientId: registrationId,
      clean: true,
      keepalive: 180,
      username: `${registrationResource(target.idScope, registrationId)}/api-version=${API_VERSION}&ClientVersion=${encodeURIComponent(CLIENT_VERSION)}`,
      ...(credentials.key ? { password: dpsToken(target.idScope, registrationId, credentials.key) } : {}),
    });
    await connection.subscribe(RESPONSE_TOPIC, 1);
  } catch (error) {
    connection.destroy();
    throw error;
  }
  const connectMs = performance.now() - connectStarted;
  return {
    tcpTlsMs,
    connectMs,
    session: {
      async request(request) {
        const rid = randomUUID();
        let onLost: (error: LoadgenError) => void = () => undefined;
        const answered = new Promise<Answer>((resolve, reject) => {
          if (lost) return reject(lost);
          onLost = reject;
          losing.add(reject);
          waiting.set(rid, resolve);
        });
        const [topic, body] =
          request.kind === 'register'
            ? [`$dps/registrations/PUT/iotdps-register/?$rid=${rid}`, registerBody(registrationId, request.payload)]
            : [`$dps/registrations/GET/iotdps-get-operationstatus/?$rid=${rid}&operationId=${request.operationId}`, ' '];
        try {
          // The answer may come before the PUBACK; both must come.
          const [answer] = await Promise.all([answered, connection.publish(topic, body)]);
          if (answer.body === undefined) throw new LoadgenError('protocol', `the answer on $rid ${rid} is not JSON`);
          return answer;
        } finally {
          waiting.delete(rid);
          losing.delete(onLost);
        }
      },
      close: () => connection.disconnect(),
      destroy: () => connection.destroy(),
    },
  };
}
