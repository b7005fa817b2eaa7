import { createLeaf } from '@opendps/pki';
import { X509Certificate } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import mqtt, { type MqttClient } from 'mqtt';
import { WebSocket, WebSocketServer } from 'ws';
import { mqttConnect } from '../../../test/support/tls-records';
import { createDpsMqttFrontEnd, type DpsMqttFrontEnd } from '../src';
import { ID_SCOPE, nextMessage, operationIdFor, registerTopic, ScriptedRegistration, testPki, usernameFor } from './helpers';

/** The HTTPS listener's part (docs/device-wire.md §5): upgrade /$iothub/websocket, subprotocol mqtt. */
describe('DPS over MQTT/WebSocket', () => {
  const service = new ScriptedRegistration();
  let frontEnd: DpsMqttFrontEnd;
  let server: Server;
  let port: number;
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    const { server: certificate } = testPki();
    frontEnd = createDpsMqttFrontEnd({ registration: service });
    const wss = new WebSocketServer({
      noServer: true,
      handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : false),
    });
    server = createServer({ cert: certificate.certificatePem, key: certificate.privateKeyPem, requestCert: true, rejectUnauthorized: false });
    server.on('upgrade', (request, socket, head) => {
      if (request.url !== '/$iothub/websocket') return socket.destroy();
      wss.handleUpgrade(request, socket, head, (ws) => frontEnd.handleWebSocket(ws, request));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    port = typeof address === 'object' && address ? address.port : 0;
  });

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.endAsync(true)));
    await frontEnd.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  async function wsDevice(registrationId: string, extra: object = {}): Promise<MqttClient> {
    const client = await mqtt.connectAsync(`wss://localhost:${port}/$iothub/websocket`, {
      protocolVersion: 4,
      clientId: registrationId,
      username: usernameFor(registrationId),
      password: `SharedAccessSignature sr=${ID_SCOPE}/registrations/${registrationId}&sig=x&skn=registration&se=1`,
      reconnectPeriod: 0,
      ca: testPki().ca.certificatePem,
      wsOptions: { protocol: 'mqtt' },
      ...extra,
    });
    clients.push(client);
    return client;
  }

  test('register over wss: the same topics, transport mqtt-ws, the client address', async () => {
    const client = await wsDevice('ws-dev-1');
    await client.subscribeAsync('$dps/registrations/res/#', { qos: 1 });
    const response = nextMessage(client);
    await client.publishAsync(registerTopic('w1'), JSON.stringify({ registrationId: 'ws-dev-1' }), { qos: 1 });
    const { topic, json } = await response;
    expect(topic).toBe('$dps/registrations/res/202/?$rid=w1&retry-after=3');
    expect(json.operationId).toBe(operationIdFor('ws-dev-1'));
    expect(service.registered.at(-1)).toMatchObject({ registrationId: 'ws-dev-1', transport: 'mqtt-ws', proof: { kind: 'sas' } });
    expect(service.registered.at(-1)?.clientAddress).toMatch(/127\.0\.0\.1$/);
  });

  test('an X.509 device over wss: the chain from the TLS handshake under the upgrade', async () => {
    const leaf = createLeaf(testPki().ca, { commonName: 'ws-x509' });
    const client = await wsDevice('ws-x509', { password: undefined, cert: leaf.certificatePem, key: leaf.privateKeyPem });
    const response = nextMessage(client);
    await client.publishAsync(registerTopic('w2'), '{}', { qos: 1 });
    await response;
    const proof = service.registered.at(-1)?.proof;
    // Given only the leaf, OpenSSL completes the client's chain from its `ca`: leaf, then root.
    expect(proof?.kind === 'x509' ? proof.chain.map((der) => der.toString('base64')) : proof).toEqual([
      new X509Certificate(leaf.certificatePem).raw.toString('base64'),
      new X509Certificate(testPki().ca.certificatePem).raw.toString('base64'),
    ]);
  });

  test('each MQTT packet is one WebSocket message (not one per field)', async () => {
    const ws = new WebSocket(`wss://localhost:${port}/$iothub/websocket`, 'mqtt', { ca: testPki().ca.certificatePem });
    try {
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      const messages: Buffer[] = [];
      const connack = new Promise<void>((resolve) =>
        ws.on('message', (data: Buffer) => {
          messages.push(data);
          if (Buffer.concat(messages).length >= 4) resolve();
        }),
      );
      const registrationId = 'ws-one-message';
      ws.send(mqttConnect({ clientId: registrationId, username: usernameFor(registrationId), password: `SharedAccessSignature sr=${ID_SCOPE}/registrations/${registrationId}&sig=x&skn=registration&se=1` }));
      await connack;
      expect(messages.map((message) => message.toString('hex'))).toEqual(['20020000']);
    } finally {
      ws.terminate();
    }
  });
});
