import { createServer, type Server } from 'node:https';
import WebSocket, { WebSocketServer } from 'ws';
import { createDpsAmqpFrontEnd, type DpsAmqpFrontEnd } from '../src';
import { ScriptedRegistration, testPki } from './helpers';

/** The HTTPS listener's part (docs/device-wire.md §5): it hands over `/$iothub/websocket` upgrades. */
describe('handleWebSocket', () => {
  let frontEnd: DpsAmqpFrontEnd;
  let server: Server;
  let port: number;

  beforeAll(async () => {
    const { server: certificate } = testPki();
    frontEnd = createDpsAmqpFrontEnd({ registration: new ScriptedRegistration() });
    // Accepts any subprotocol, so that the front-end's own check is what is tested.
    const wss = new WebSocketServer({ noServer: true, handleProtocols: (protocols) => [...protocols][0] ?? false });
    server = createServer({ cert: certificate.certificatePem, key: certificate.privateKeyPem });
    server.on('upgrade', (request, socket, head) => wss.handleUpgrade(request, socket, head, (ws) => frontEnd.handleWebSocket(ws, request)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    port = typeof address === 'object' && address ? address.port : 0;
  });

  afterAll(async () => {
    await frontEnd.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  function connect(protocol: string): Promise<{ code: number; received: Buffer[] }> {
    return new Promise((resolve) => {
      const ws = new WebSocket(`wss://localhost:${port}/$iothub/websocket`, protocol, { ca: testPki().ca.certificatePem });
      const received: Buffer[] = [];
      ws.on('open', () => ws.send(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0x03, 0x01, 0x00, 0x00])));
      ws.on('message', (data: Buffer) => {
        received.push(data);
        ws.close();
      });
      ws.on('close', (code) => resolve({ code, received }));
    });
  }

  test('another subprotocol is closed with 1002', async () => {
    expect(await connect('mqtt')).toEqual({ code: 1002, received: [] });
  });

  test('AMQPWSB10 carries AMQP: the SASL header is answered', async () => {
    const { received } = await connect('AMQPWSB10');
    expect(received[0]?.subarray(0, 8)).toEqual(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0x03, 0x01, 0x00, 0x00]));
  });
});
