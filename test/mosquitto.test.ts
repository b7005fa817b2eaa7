/**
 * An independent MQTT peer: the Debian mosquitto-clients register a symmetric-key device over
 * MQTT/TLS against the composed server (docs/device-wire.md §2): --cafile with the dev CA, -u the DPS
 * username, -P a SAS from createSasToken.
 *
 * DPS answers on the connection that asked, whether or not it subscribed, and routes nothing between
 * connections (as Azure DPS, where `mosquitto_pub -d` shows the response arrive). So mosquitto_pub
 * asks and, kept connected with -l, reads the status from the response topic in its -d trace (it
 * prints topics, not payloads); the body is checked through the service API and the store.
 * mosquitto_sub is granted `$dps/registrations/res/#`; a subscriber to it on a second connection sees
 * nothing of the first one's request. (`mosquitto_rr` cannot be used: it refuses a wildcard response topic.)
 */
import { spawn } from 'node:child_process';
import mqtt from 'mqtt';
import { generateSymmetricKey, validateIndividualEnrollment } from '@opendps/model';
import { enrollments } from '@opendps/store';
import { deviceSas, portOf } from './support/devices';
import { serviceClient, startOpenDps, type OpenDps } from './support/opendps';

const REGISTRATION_ID = 'mosquitto-dev-1';
const key = generateSymmetricKey();
let dps: OpenDps;
let previousAnswerWithin: string | undefined;

beforeAll(async () => {
  // Answer every register with 202 so the peer also polls (packages/server/src/device-plane.ts).
  previousAnswerWithin = process.env.OPENDPS_ANSWER_WITHIN_MS;
  process.env.OPENDPS_ANSWER_WITHIN_MS = '0';
  dps = await startOpenDps();
  await enrollments(dps.server.store, dps.connection.idScope).put(
    validateIndividualEnrollment({
      registrationId: REGISTRATION_ID,
      attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: generateSymmetricKey() } },
    }),
  );
});

afterAll(async () => {
  if (previousAnswerWithin === undefined) delete process.env.OPENDPS_ANSWER_WITHIN_MS;
  else process.env.OPENDPS_ANSWER_WITHIN_MS = previousAnswerWithin;
  await dps?.stop();
});

/** The connection options every mosquitto client here shares: TLS with our CA, the DPS username and SAS. */
function connectArgs(clientId = REGISTRATION_ID): string[] {
  const { idScope } = dps.connection;
  return [
    '-h', 'localhost',
    '-p', String(portOf(dps.connection.endpoints.mqtt)),
    '--cafile', dps.server.caFile,
    '-V', 'mqttv311',
    '-i', clientId,
    '-u', `${idScope}/registrations/${REGISTRATION_ID}/api-version=2019-03-31`,
    '-P', deviceSas(idScope, REGISTRATION_ID, key),
    '-q', '1',
  ];
}

interface Trace {
  code: number | null;
  /** Topics of the PUBLISH packets the client received, from its -d trace. */
  received: string[];
  output: string;
}

/** Runs one mosquitto client to its exit, feeding `lines` on stdin after `ready` appears (or at once). */
function runMosquitto(command: string, args: string[], options: { lines?: string[]; until?: RegExp } = {}): Promise<Trace> {
  return new Promise((resolve, reject) => {
    // stdbuf: the -d trace goes to stdout, block-buffered on a pipe; it is read while the client runs.
    const child = spawn('stdbuf', ['-oL', command, ...args, '-d'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      // -l keeps mosquitto_pub connected while stdin is open: close it once the answer is in.
      if (options.until?.test(output)) child.stdin.end();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const received = [...output.matchAll(/received PUBLISH \(d\d, q\d, r\d, m\d+, '([^']*)'/g)].map((match) => match[1]!);
      resolve({ code, received, output });
    });
    for (const line of options.lines ?? []) child.stdin.write(`${line}\n`);
    if (!options.until) child.stdin.end();
  });
}

/** mosquitto_pub -l: publish each line on `topic` (QoS 1) and stay connected until a response arrives. */
function publishAndAwaitResponse(topic: string, line: string, password?: string): Promise<Trace> {
  const args = connectArgs();
  if (password) args[args.indexOf('-P') + 1] = password;
  return runMosquitto('mosquitto_pub', [...args, '-t', topic, '-l'], { lines: [line], until: /received PUBLISH .*'\$dps\/registrations\/res\// });
}

test('mosquitto_pub registers with a SAS password: 202 with retry-after, then a poll answers 200 and the device is assigned', async () => {
  const { idScope } = dps.connection;
  const registered = await publishAndAwaitResponse('$dps/registrations/PUT/iotdps-register/?$rid=1', JSON.stringify({ registrationId: REGISTRATION_ID }));
  expect(registered.output).toMatch(/received CONNACK \(0\)/);
  expect(registered.output).toMatch(/received PUBACK/);
  expect(registered.received).toEqual(['$dps/registrations/res/202/?$rid=1&retry-after=2']);

  // mosquitto_pub prints topics only: the operation id of that 202 is read from the store.
  const operations = await dps.server.store.collection<{ operationId: string; registrationId: string }>(idScope, 'operations').list();
  const operation = operations.items.find((item) => item.value.registrationId === REGISTRATION_ID);
  expect(operation).toBeDefined();

  // The poll body is a single space, as the SDK sends (docs/device-wire.md, trap 7); each poll is a new connection.
  let polled: Trace | undefined;
  for (let rid = 2; rid < 12 && !polled?.received[0]?.includes('/200/'); rid++) {
    if (polled) await new Promise((resolve) => setTimeout(resolve, 50));
    polled = await publishAndAwaitResponse(`$dps/registrations/GET/iotdps-get-operationstatus/?$rid=${rid}&operationId=${operation!.value.operationId}`, ' ');
    expect(polled.received[0]).toMatch(new RegExp(`^\\$dps/registrations/res/(200|202)/\\?\\$rid=${rid}($|&)`));
  }
  expect(polled?.received[0]).toMatch(/^\$dps\/registrations\/res\/200\/\?\$rid=\d+$/);

  const service = serviceClient(dps.connection.serviceConnectionString, dps.connection.endpoints.https, dps.ca);
  const state = (await service.getDeviceRegistrationState(REGISTRATION_ID)).responseBody;
  expect(state).toMatchObject({ registrationId: REGISTRATION_ID, status: 'assigned', deviceId: REGISTRATION_ID, assignedHub: dps.connection.endpoints.hubs[0] });
});

test('a wrong SAS: the CONNECT is accepted, the register request answered 401 on the response topic', async () => {
  const wrong = deviceSas(dps.connection.idScope, REGISTRATION_ID, generateSymmetricKey());
  const trace = await publishAndAwaitResponse('$dps/registrations/PUT/iotdps-register/?$rid=wrong', JSON.stringify({ registrationId: REGISTRATION_ID }), wrong);
  expect(trace.received).toEqual(['$dps/registrations/res/401/?$rid=wrong']);
});

test("mosquitto_sub is granted QoS 1 on $dps/registrations/res/#; a subscriber there sees nothing of another connection's request, only its own answer after it", async () => {
  // -E: mosquitto_sub exits once the broker has acknowledged the subscription.
  const granted = await runMosquitto('mosquitto_sub', [...connectArgs(), '-t', '$dps/registrations/res/#', '-E']);
  expect(granted.output).toMatch(/Subscribed \(mid: 1\): 1/);
  expect(granted.code).toBe(0);

  // A second peer (MQTT.js) stays subscribed to the same filter while mosquitto_pub asks.
  const { idScope } = dps.connection;
  const subscriber = await mqtt.connectAsync({
    protocol: 'mqtts',
    host: 'localhost',
    port: portOf(dps.connection.endpoints.mqtt),
    ca: dps.ca,
    protocolVersion: 4,
    clientId: REGISTRATION_ID,
    reconnectPeriod: 0,
    username: `${idScope}/registrations/${REGISTRATION_ID}/api-version=2019-03-31`,
    password: deviceSas(idScope, REGISTRATION_ID, key),
  });
  try {
    const received: string[] = [];
    subscriber.on('message', (topic) => received.push(topic));
    expect(await subscriber.subscribeAsync('$dps/registrations/res/#', { qos: 1 })).toMatchObject([{ qos: 1 }]);
    const asked = await publishAndAwaitResponse('$dps/registrations/PUT/iotdps-register/?$rid=elsewhere', JSON.stringify({ registrationId: REGISTRATION_ID }));
    expect(asked.received).toEqual(['$dps/registrations/res/202/?$rid=elsewhere&retry-after=2']);
    // The subscriber asks next. Its answer is sent after the other one was, on the same connection
    // anything misrouted would have used: the other answer would arrive first.
    const own = new Promise<void>((resolve) => subscriber.on('message', (topic) => topic.includes('$rid=mine') && resolve()));
    await subscriber.publishAsync('$dps/registrations/PUT/iotdps-register/?$rid=mine', JSON.stringify({ registrationId: REGISTRATION_ID }), { qos: 1 });
    await own;
    expect(received).toEqual(['$dps/registrations/res/202/?$rid=mine&retry-after=2']);
  } finally {
    await subscriber.endAsync();
  }
});
