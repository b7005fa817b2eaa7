/**
 * Built-in hubs served on the device listeners (docs/architecture.md "Hub addresses"), on free
 * ports: a hub without a port of its own takes device MQTT on the DPS MQTT port and MQTT over
 * `/$iothub/websocket` and its REST API on the HTTPS port, told apart from DPS by the CONNECT
 * username, the path and the Host header. Off the standard ports its name carries the MQTT port.
 * The same on 8883/443 with bare and dotted names: hub-addresses-netns.test.ts.
 */
import https from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { createSasToken } from '@opendps/attestation';
import { generateSymmetricKey } from '@opendps/model';
import mqtt from 'mqtt';
import { connectToHub, portOf, rawHttps, registerWithSdk, type DpsEndpoints } from './support/devices';
import { serviceClient, startOpenDps, type OpenDps } from './support/opendps';

let dps: OpenDps;
let endpoints: DpsEndpoints;
const key = generateSymmetricKey();

beforeAll(async () => {
  // No hub port: the default hub is served on the device listeners.
  dps = await startOpenDps({ hubOnDeviceListeners: true });
  endpoints = { mqttPort: portOf(dps.connection.endpoints.mqtt), httpsPort: portOf(dps.connection.endpoints.https), ca: dps.ca };
  const service = serviceClient(dps.connection.serviceConnectionString, dps.connection.endpoints.https, dps.ca);
  for (const registrationId of ['shared-1', 'shared-2']) {
    await service.createOrUpdateIndividualEnrollment({
      registrationId,
      attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: generateSymmetricKey() } },
      initialTwin: { properties: { desired: { interval: 42 } } },
    } as never);
  }
}, 30_000);

afterAll(() => dps?.stop());

const hub1 = () => {
  const hub = dps.server.hubs.get('hub-1');
  if (!hub) throw new Error('hub-1 is not running');
  return hub;
};

describe('names', () => {
  it('names the default hub host:mqttPort off 8883, everywhere it is named; its service string names the HTTPS port', () => {
    const hostName = `localhost:${endpoints.mqttPort}`;
    expect(hub1().onDeviceListeners).toBe(true);
    expect(hub1().hostName).toBe(hostName);
    expect(dps.connection.endpoints.hubs).toEqual([hostName]);
    const linked = dps.connection.instances[0]?.linkedHubs[0];
    expect(linked?.hostName).toBe(hostName);
    expect(linked?.connectionString).toMatch(new RegExp(`^HostName=localhost:${endpoints.httpsPort};SharedAccessKeyName=iothubowner;`));
  });
});

describe('device MQTT on the DPS MQTT listener', () => {
  it('registers over MQTT, then the unmodified device SDK reaches the assigned hub on the same port: twin and telemetry', async () => {
    const result = await registerWithSdk('mqtt', endpoints, dps.connection.idScope, { kind: 'symmetricKey', registrationId: 'shared-1', key });
    expect(result).toMatchObject({ status: 'assigned', assignedHub: `localhost:${endpoints.mqttPort}`, deviceId: 'shared-1' });
    const device = await connectToHub(result.assignedHub, result.deviceId, { kind: 'symmetricKey', registrationId: 'shared-1', key }, dps.ca);
    try {
      expect(await device.desired()).toMatchObject({ interval: 42 });
      await device.sendTelemetry({ temperature: 21 });
      expect(hub1().receivedMessages('shared-1').map((message) => JSON.parse(message.payload.toString()))).toEqual([{ temperature: 21 }]);
      expect(hub1().connectedDevices()).toContain('shared-1');
    } finally {
      await device.close();
    }
  });

  it('MQTT over /$iothub/websocket on the HTTPS port reaches the hub by its username, the DPS broker still answers DPS', async () => {
    await registerWithSdk('mqtt', endpoints, dps.connection.idScope, { kind: 'symmetricKey', registrationId: 'shared-2', key });
    const hostName = hub1().hostName;
    const password = createSasToken({ resource: `${hostName}/devices/shared-2`, key, expiry: Math.floor(Date.now() / 1000) + 600, encodeResource: true });
    const client = await mqtt.connectAsync(`wss://localhost:${endpoints.httpsPort}/$iothub/websocket`, {
      clientId: 'shared-2',
      username: `${hostName}/shared-2/?api-version=2021-04-12`,
      password,
      protocolVersion: 4,
      ca: dps.ca,
      reconnectPeriod: 0,
      wsOptions: { protocol: 'mqtt', ca: dps.ca } as never,
    });
    try {
      await client.subscribeAsync('$iothub/twin/res/#');
      const answer = new Promise<{ topic: string; body: unknown }>((resolve) =>
        client.once('message', (topic, payload) => resolve({ topic, body: JSON.parse(payload.toString()) })),
      );
      await client.publishAsync('$iothub/twin/GET/?$rid=1', '');
      const { topic, body } = await answer;
      expect(topic).toMatch(/^\$iothub\/twin\/res\/200\/\?\$rid=1/);
      expect(body).toMatchObject({ desired: { interval: 42 } });
    } finally {
      await client.endAsync();
    }
  });

  it('refuses a hub CONNECT with a wrong key on the shared listener (CONNACK 4), as the hub port does', async () => {
    const hostName = hub1().hostName;
    const password = createSasToken({ resource: `${hostName}/devices/shared-1`, key: generateSymmetricKey(), expiry: Math.floor(Date.now() / 1000) + 600 });
    const refused = mqtt.connectAsync(`mqtts://localhost:${endpoints.mqttPort}`, {
      clientId: 'shared-1',
      username: `${hostName}/shared-1/?api-version=2021-04-12`,
      password,
      protocolVersion: 4,
      ca: dps.ca,
      reconnectPeriod: 0,
    });
    await expect(refused).rejects.toMatchObject({ code: 4 });
  });

  it('leaves a DPS CONNECT to the DPS broker: the username of an unknown host is not a hub device', async () => {
    // A hub-shaped username naming no hub goes to DPS, which refuses it as a DPS username.
    const refused = mqtt.connectAsync(`mqtts://localhost:${endpoints.mqttPort}`, {
      clientId: 'x',
      username: 'nohub.example/x/?api-version=2021-04-12',
      password: 'SharedAccessSignature sr=a&sig=b&se=1',
      protocolVersion: 4,
      ca: dps.ca,
      reconnectPeriod: 0,
    });
    await expect(refused).rejects.toMatchObject({ code: expect.any(Number) as number });
    expect(hub1().connectedDevices()).not.toContain('x');
  });

  it('closes a connection that ends halfway through its CONNECT (neither broker takes it)', async () => {
    const socket = tlsConnect({ host: 'localhost', port: endpoints.mqttPort, ca: dps.ca });
    await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
    socket.write(Buffer.from([0x10, 0x7f, 0x00])); // announces 127 bytes, sends 1
    socket.end();
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
  });
});

/** A GET whose Host header names `host` while TLS names localhost. */
function getWithHost(path: string, host: string, authorization: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: 'localhost', servername: 'localhost', port: endpoints.httpsPort, path, ca: dps.ca, agent: false, headers: { host, authorization } },
      (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('the hub REST API on the HTTPS listener', () => {
  const token = (resource: string): string => {
    const policy = hub1().accessPolicy;
    return createSasToken({ resource, key: policy.primaryKey, keyName: policy.keyName, expiry: Math.floor(Date.now() / 1000) + 600, encodeResource: true });
  };

  it('answers /twins/{id} addressed to the hub by Host, with a token for the HostName of its connection string', async () => {
    const answer = await rawHttps({
      port: endpoints.httpsPort,
      ca: dps.ca,
      method: 'GET',
      path: '/twins/shared-1?api-version=2021-04-12',
      headers: { authorization: token(`localhost:${endpoints.httpsPort}`), host: `localhost:${endpoints.httpsPort}` },
    });
    expect(answer.status).toBe(200);
    expect(answer.json).toMatchObject({ deviceId: 'shared-1', properties: { desired: { interval: 42 } } });
  });

  it('creates and lists devices; a token for the bare host name works too', async () => {
    const created = await rawHttps({
      port: endpoints.httpsPort,
      ca: dps.ca,
      method: 'PUT',
      path: '/devices/rest-made?api-version=2021-04-12',
      headers: { authorization: token('localhost'), host: 'localhost', 'content-type': 'application/json' },
      body: JSON.stringify({ deviceId: 'rest-made' }),
    });
    expect(created.status).toBe(200);
    const listed = await rawHttps({
      port: endpoints.httpsPort,
      ca: dps.ca,
      method: 'GET',
      path: '/devices?api-version=2021-04-12',
      headers: { authorization: token('localhost'), host: 'localhost' },
    });
    expect(listed.status).toBe(200);
    expect(JSON.parse(listed.text).map((device: { deviceId: string }) => device.deviceId)).toEqual(expect.arrayContaining(['shared-1', 'rest-made']));
  });

  it('leaves DPS paths to DPS, and hub paths for a host that is no hub to DPS (its 404)', async () => {
    const dpsPath = await rawHttps({
      port: endpoints.httpsPort,
      ca: dps.ca,
      method: 'GET',
      path: `/enrollments/shared-1?api-version=2021-10-01`,
      headers: { authorization: token('localhost') },
    });
    expect(dpsPath.status).toBe(401); // the service API, which does not take a hub token
    const otherHost = await getWithHost('/devices/shared-1?api-version=2021-04-12', 'nohub.example', token('nohub.example'));
    expect(otherHost.status).toBe(404);
    expect(JSON.parse(otherHost.text)).toMatchObject({ errorCode: 404001 });
  });
});

describe('dotted host names', () => {
  it('links hub-2.localhost on the device listeners; a device assigned there reaches it by the username host and SNI', async () => {
    const admin = Object.fromEntries(dps.server.connection.adminConnectionString.split(';').map((part) => [part.slice(0, part.indexOf('=')), part.slice(part.indexOf('=') + 1)]));
    const authorization = createSasToken({ resource: admin.HostName ?? '', key: admin.SharedAccessKey ?? '', keyName: admin.SharedAccessKeyName ?? '', expiry: Math.floor(Date.now() / 1000) + 600 });
    const linked = await rawHttps({
      port: endpoints.httpsPort,
      ca: dps.ca,
      method: 'PUT',
      path: '/admin/instances/default/hubs/hub-2',
      headers: { authorization, 'content-type': 'application/json' },
      body: JSON.stringify({ builtin: { hostName: 'hub-2.localhost' } }),
    });
    const hostName = `hub-2.localhost:${endpoints.mqttPort}`;
    expect(linked.status).toBe(201);
    expect(linked.json).toMatchObject({ hostName, builtin: { hostName: 'hub-2.localhost' }, listening: true });
    expect(linked.json?.connectionString).toMatch(new RegExp(`^HostName=hub-2\\.localhost:${endpoints.httpsPort};`));

    const service = serviceClient(dps.connection.serviceConnectionString, dps.connection.endpoints.https, dps.ca);
    await service.createOrUpdateIndividualEnrollment({
      registrationId: 'dotted-1',
      attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: generateSymmetricKey() } },
      iotHubs: [hostName],
      allocationPolicy: 'static',
    } as never);
    const result = await registerWithSdk('mqtt', endpoints, dps.connection.idScope, { kind: 'symmetricKey', registrationId: 'dotted-1', key });
    expect(result.assignedHub).toBe(hostName);

    const password = createSasToken({ resource: `${hostName}/devices/dotted-1`, key, expiry: Math.floor(Date.now() / 1000) + 600, encodeResource: true });
    // hub-2.localhost does not resolve here without a hosts entry: dial localhost and name the hub in
    // SNI, as a client that resolved it would; the certificate it gets must name the hub.
    const client = await mqtt.connectAsync(`mqtts://localhost:${endpoints.mqttPort}`, {
      clientId: 'dotted-1',
      username: `${hostName}/dotted-1/?api-version=2021-04-12`,
      password,
      protocolVersion: 4,
      ca: dps.ca,
      servername: 'hub-2.localhost',
      reconnectPeriod: 0,
    } as never);
    try {
      const stream = (client as unknown as { stream: { getPeerCertificate(): { subjectaltname?: string } } }).stream;
      expect(stream.getPeerCertificate().subjectaltname).toBe('DNS:hub-2.localhost');
      expect(dps.server.hubs.get('hub-2')?.connectedDevices()).toContain('dotted-1');
      expect(hub1().connectedDevices()).not.toContain('dotted-1');
    } finally {
      await client.endAsync();
    }
  });
});
