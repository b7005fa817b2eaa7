import { Agent, request } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { Http, RestApiClient } from 'azure-iot-http-base';
import { Registry, SharedAccessSignature } from 'azure-iothub';
import mqtt, { type MqttClient } from 'mqtt';
import { createSasToken } from '@opendps/attestation';
import type { BuiltInHub } from '@opendps/hub';
import { deviceToken, deviceUsername, type HubFixture } from './helpers';

/**
 * The unmodified azure-iothub Registry pointed at a built-in hub (docs/architecture.md "Contract details"):
 * `Registry.fromConnectionString` would send `host: 'localhost:port'` to `https.request`, which
 * cannot split a port (ENOTFOUND), so the Registry is built with its public constructor over an
 * azure-iot-http-base RestApiClient whose agent's `defaultPort` is the hub port. The Registry's
 * constructor replaces the client's options with its own keep-alive agent, so ours are set after it.
 */
export function registryFor(fixture: HubFixture, key = fixture.hub.accessPolicy.primaryKey, keyName = 'iothubowner'): Registry {
  const hostName = fixture.hub.hostName;
  const [host, port] = hostName.split(':') as [string, string];
  const config = { host, sharedAccessSignature: SharedAccessSignature.create(hostName, keyName, key, anHourFromNow()) };
  const ca = fixture.root.certificatePem;
  const agent = new Agent({ ca, keepAlive: true });
  (agent as Agent & { defaultPort: number }).defaultPort = Number(port);
  // azure-iothub bundles its own copy of the SAS class; azure-iot-http-base only calls its `extend`.
  const restApiClient = new RestApiClient(config as unknown as RestApiClient.TransportConfig, 'azure-iothub/1.16.6', new Http());
  const registry = new Registry(config, restApiClient as unknown as ConstructorParameters<typeof Registry>[1]);
  restApiClient.setOptions({ ca, http: { agent } });
  return registry;
}

function anHourFromNow(): number {
  return Math.floor(Date.now() / 1000) + 3600;
}

/** A service SAS for the hub's `iothubowner` policy (or any key and resource given). */
export function serviceToken(hub: BuiltInHub, options: { key?: string; keyName?: string; resource?: string } = {}): string {
  return createSasToken({
    resource: options.resource ?? hub.hostName,
    key: options.key ?? hub.accessPolicy.primaryKey,
    keyName: options.keyName ?? 'iothubowner',
    expiry: anHourFromNow(),
  });
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json: unknown;
}

/** One HTTPS request to the hub port, as raw as the tests need. */
export function hubRequest(
  fixture: HubFixture,
  method: string,
  path: string,
  options: { body?: string | Buffer; headers?: Record<string, string>; auth?: string | null } = {},
): Promise<RawResponse> {
  const headers: Record<string, string> = { ...options.headers };
  const auth = options.auth === undefined ? serviceToken(fixture.hub) : options.auth;
  if (auth !== null) headers.authorization = auth;
  if (options.body !== undefined) {
    headers['content-type'] ??= 'application/json; charset=utf-8';
    headers['content-length'] = String(Buffer.byteLength(options.body));
  }
  return new Promise((resolve, reject) => {
    const req = request(
      { host: 'localhost', port: fixture.hub.port, method, path, headers, ca: fixture.root.certificatePem, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** A device over MQTT on the same hub port (the dispatcher's other branch). */
export async function connectDevice(fixture: HubFixture, deviceId: string, key: string): Promise<MqttClient> {
  const client = mqtt.connect({
    protocol: 'mqtts',
    host: 'localhost',
    port: fixture.hub.port,
    ca: fixture.root.certificatePem,
    clientId: deviceId,
    username: deviceUsername(fixture.hub, deviceId),
    password: deviceToken(fixture.hub, deviceId, key),
    protocolVersion: 4,
    clean: false,
    reconnectPeriod: 0,
  });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  return client;
}

export function nextMessage(client: MqttClient, prefix: string): Promise<{ topic: string; payload: Buffer }> {
  return new Promise((resolve) => {
    const onMessage = (topic: string, payload: Buffer): void => {
      if (!topic.startsWith(prefix)) return;
      client.off('message', onMessage);
      resolve({ topic, payload });
    };
    client.on('message', onMessage);
  });
}
