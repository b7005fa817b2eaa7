/**
 * Devices for the cross-package suites: the unmodified Azure IoT device SDKs pointed at a local
 * OpenDPS (docs/device-wire.md §7), and raw MQTT / HTTPS clients that show exactly what is on the wire.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createSasToken } from '@opendps/attestation';
import type { ConnectionInfo } from '@opendps/server';
import { SharedAccessSignature } from 'azure-iot-common';
import { Client as HubClient, Message } from 'azure-iot-device';
import { Mqtt as HubMqtt } from 'azure-iot-device-mqtt';
import { Http as HttpBase } from 'azure-iot-http-base';
import { MqttBase } from 'azure-iot-mqtt-base';
import { ProvisioningDeviceClient, type RegistrationResult } from 'azure-iot-provisioning-device';
import { Http } from 'azure-iot-provisioning-device-http';
import { Mqtt, MqttWs } from 'azure-iot-provisioning-device-mqtt';
import { SymmetricKeySecurityClient } from 'azure-iot-security-symmetric-key';
import { X509Security } from 'azure-iot-security-x509';
import mqtt from 'mqtt';

export type DpsTransport = 'mqtt' | 'mqttws' | 'http';
export const DPS_TRANSPORTS: readonly DpsTransport[] = ['mqtt', 'mqttws', 'http'];

/** Where a device finds OpenDPS: the DPS MQTT port, the HTTPS port (REST and WebSockets) and the CA. */
export interface DpsEndpoints {
  mqttPort: number;
  httpsPort: number;
  ca: string;
}

export type DeviceCredential =
  | { kind: 'symmetricKey'; registrationId: string; key: string }
  /** `cert`: the leaf PEM, followed by any intermediates the device sends. */
  | { kind: 'x509'; registrationId: string; cert: string; key: string };

/** `host:port` -> port. */
export function portOf(endpoint: string | null | undefined): number {
  const port = Number(endpoint?.slice(endpoint.lastIndexOf(':') + 1));
  if (!Number.isInteger(port) || port <= 0) throw new Error(`No port in the endpoint '${String(endpoint)}'.`);
  return port;
}

/**
 * An unmodified provisioning transport aimed at localhost (docs/device-wire.md §7): Mqtt takes the
 * port in the host; MqttWs and Http force 443 (docs/device-wire.md, trap 13), so an injected base carries an agent that
 * names our port and trusts our CA. Injecting the base is the packages' own (private) constructor
 * parameter; nothing is patched.
 */
export function provisioningTransport(kind: DpsTransport, endpoints: DpsEndpoints): { host: string; transport: unknown } {
  const { ca } = endpoints;
  switch (kind) {
    case 'mqtt': {
      const base = new MqttBase();
      base.setOptions({ ca });
      return { host: `localhost:${endpoints.mqttPort}`, transport: new Mqtt(base as never) };
    }
    case 'mqttws': {
      const base = new MqttBase();
      base.setOptions({ ca, mqtt: { webSocketAgent: new https.Agent({ port: endpoints.httpsPort, ca } as https.AgentOptions) } } as never);
      return { host: 'localhost', transport: new MqttWs(base as never) };
    }
    case 'http': {
      const base = new HttpBase();
      base.setOptions({ ca, http: { agent: new https.Agent({ port: endpoints.httpsPort, ca } as https.AgentOptions) } } as never);
      const transport = new Http(base as never);
      transport.setTransportOptions({ pollingInterval: 200 });
      return { host: 'localhost', transport };
    }
  }
}

/** `register()` with the unmodified ProvisioningDeviceClient and the security client of the credential. */
export async function registerWithSdk(
  kind: DpsTransport,
  endpoints: DpsEndpoints,
  idScope: string,
  credential: DeviceCredential,
): Promise<RegistrationResult> {
  const { host, transport } = provisioningTransport(kind, endpoints);
  const security =
    credential.kind === 'symmetricKey'
      ? new SymmetricKeySecurityClient(credential.registrationId, credential.key)
      : new X509Security(credential.registrationId, { cert: credential.cert, key: credential.key });
  const client = ProvisioningDeviceClient.create(host, idScope, transport as never, security as never);
  return (await client.register()) as RegistrationResult;
}

/** A device connected to its hub with the unmodified azure-iot-device Client over MQTT. */
export interface HubDevice {
  client: HubClient;
  desired(): Promise<Record<string, unknown>>;
  sendTelemetry(body: unknown, properties?: Record<string, string>): Promise<void>;
  reportProperties(patch: Record<string, unknown>): Promise<void>;
  close(): Promise<void>;
}

/**
 * The hub connection an app builds from its registration result: `HostName={assignedHub}` (with the
 * built-in hub's port, docs/device-wire.md §7) + `DeviceId` + the key, or `x509=true` and the chain.
 */
export async function connectToHub(assignedHub: string, deviceId: string, credential: DeviceCredential, ca: string): Promise<HubDevice> {
  const connectionString =
    credential.kind === 'symmetricKey'
      ? `HostName=${assignedHub};DeviceId=${deviceId};SharedAccessKey=${credential.key}`
      : `HostName=${assignedHub};DeviceId=${deviceId};x509=true`;
  const client = HubClient.fromConnectionString(connectionString, HubMqtt);
  await client.setOptions(credential.kind === 'symmetricKey' ? { ca } : { ca, cert: credential.cert, key: credential.key });
  await client.open();
  const twin = await client.getTwin();
  return {
    client,
    desired: async () => ({ ...(await client.getTwin()).properties.desired }),
    sendTelemetry: async (body, properties = {}) => {
      const message = new Message(JSON.stringify(body));
      message.contentType = 'application/json';
      message.contentEncoding = 'utf-8';
      for (const [name, value] of Object.entries(properties)) message.properties.add(name, value);
      await client.sendEvent(message);
    },
    reportProperties: (patch) =>
      new Promise<void>((resolve, reject) => twin.properties.reported.update(patch, (error?: Error) => (error ? reject(error) : resolve()))),
    close: async () => {
      await client.close();
    },
  };
}

/** The DPS device SAS the Node SDK builds for symmetric keys (raw `sr`, skn=registration; docs/device-wire.md §1). */
export function deviceSas(idScope: string, registrationId: string, key: string, expiry = Math.floor(Date.now() / 1000) + 3600): string {
  return createSasToken({ resource: `${idScope}/registrations/${registrationId}`, key, keyName: 'registration', expiry });
}

// --- raw HTTPS -------------------------------------------------------------------------------------

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The JSON body, or undefined when it is not JSON. */
  json: Record<string, unknown> | undefined;
}

export interface RawRequest {
  port: number;
  ca: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Client certificate chain and key, presented in TLS. */
  cert?: string;
  key?: string;
}

/** One HTTPS request on a fresh connection (no agent): status, headers and body. */
export function rawHttps(request: RawRequest): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: 'localhost',
        port: request.port,
        method: request.method,
        path: request.path,
        ca: request.ca,
        agent: false,
        ...(request.cert ? { cert: request.cert, key: request.key } : {}),
        headers: { ...(request.body !== undefined ? { 'content-length': String(Buffer.byteLength(request.body)) } : {}), ...request.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: parseObject(text) });
        });
      },
    );
    req.on('error', reject);
    req.end(request.body);
  });
}

/** The Node SDK's register PUT (docs/device-wire.md §4), raw. */
export function httpsRegister(
  endpoints: DpsEndpoints,
  idScope: string,
  registrationId: string,
  proof: { authorization?: string; cert?: string; key?: string },
): Promise<RawResponse> {
  return rawHttps({
    port: endpoints.httpsPort,
    ca: endpoints.ca,
    method: 'PUT',
    path: `/${encodeURIComponent(idScope)}/registrations/${encodeURIComponent(registrationId)}/register?api-version=2019-03-31`,
    headers: {
      accept: 'application/json',
      'content-type': 'application/json; charset=utf-8',
      ...(proof.authorization ? { authorization: proof.authorization } : {}),
    },
    body: JSON.stringify({ registrationId }),
    ...(proof.cert ? { cert: proof.cert, key: proof.key } : {}),
  });
}

// --- raw MQTT --------------------------------------------------------------------------------------

export interface MqttDpsAnswer {
  status: number;
  topic: string;
  body: Record<string, unknown> | undefined;
  retryAfter?: number;
}

export interface MqttDpsOptions {
  port: number;
  ca: string;
  idScope: string;
  registrationId: string;
  /** The SAS (symmetric key); absent for X.509. */
  password?: string;
  cert?: string;
  key?: string;
}

/** A raw MQTT 3.1.1 DPS session (mqtt.js): CONNECT as the SDK does, then request/response by `$rid`. */
export class MqttDpsSession {
  private constructor(private readonly client: mqtt.MqttClient) {}

  static async open(options: MqttDpsOptions): Promise<MqttDpsSession> {
    const client = await mqtt.connectAsync({
      protocol: 'mqtts',
      host: 'localhost',
      port: options.port,
      ca: options.ca,
      ...(options.cert ? { cert: options.cert, key: options.key } : {}),
      protocolVersion: 4,
      clientId: options.registrationId,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      username: `${options.idScope}/registrations/${options.registrationId}/api-version=2019-03-31&ClientVersion=opendps-interop`,
      ...(options.password !== undefined ? { password: options.password } : {}),
    });
    await client.subscribeAsync('$dps/registrations/res/#', { qos: 1 });
    return new MqttDpsSession(client);
  }

  /** Sends one request on `topic` + `?$rid=…[&extra]` and resolves with the response of that `$rid`. */
  request(path: string, body: string | Buffer, query = ''): Promise<MqttDpsAnswer> {
    const rid = randomUUID();
    return new Promise((resolve, reject) => {
      const onMessage = (topic: string, payload: Buffer): void => {
        const match = /^\$dps\/registrations\/res\/(\d+)\/\?(.*)$/.exec(topic);
        if (!match) return;
        const params = new URLSearchParams(match[2]);
        if (params.get('$rid') !== rid) return;
        this.client.off('message', onMessage);
        const retryAfter = params.get('retry-after');
        resolve({ status: Number(match[1]), topic, body: parseObject(payload.toString('ascii')), ...(retryAfter ? { retryAfter: Number(retryAfter) } : {}) });
      };
      this.client.on('message', onMessage);
      this.client.publish(`${path}?$rid=${rid}${query}`, body, { qos: 1 }, (error) => error && reject(error));
    });
  }

  /** Resolves when the server closes the connection (mqtt.js does not reconnect here). */
  closed(): Promise<void> {
    return new Promise((resolve) => (this.client.connected ? this.client.once('close', () => resolve()) : resolve()));
  }

  get connected(): boolean {
    return this.client.connected;
  }

  /** A QoS 1 PUBLISH on any topic; the PUBACK may never come when the server closes instead. */
  publish(topic: string, payload: string | Buffer): void {
    this.client.publish(topic, payload, { qos: 1 }, () => undefined);
  }

  /** Bytes straight onto the connection, past mqtt.js's encoder (malformed packets). */
  writeRaw(bytes: Buffer): void {
    this.client.stream.write(bytes);
  }

  register(registrationId: string): Promise<MqttDpsAnswer> {
    return this.request('$dps/registrations/PUT/iotdps-register/', JSON.stringify({ registrationId }));
  }

  poll(operationId: string): Promise<MqttDpsAnswer> {
    return this.request('$dps/registrations/GET/iotdps-get-operationstatus/', ' ', `&operationId=${operationId}`);
  }

  /** `force`: drop the connection without DISCONNECT (the server may be gone). */
  async close(force = false): Promise<void> {
    await this.client.endAsync(force);
  }
}

/** Register over raw MQTT, polling while the answer is 202 `assigning`. */
export async function mqttRegister(options: MqttDpsOptions): Promise<MqttDpsAnswer> {
  const session = await MqttDpsSession.open(options);
  try {
    let answer = await session.register(options.registrationId);
    for (let polls = 0; answer.status === 202 && polls < 20; polls++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      answer = await session.poll(String(answer.body?.operationId));
    }
    return answer;
  } finally {
    await session.close();
  }
}

// --- the built-in hub's service REST API -------------------------------------------------------------

/** `GET /twins/{deviceId}` on a built-in hub with its iothubowner connection string (raw HTTPS). */
export async function hubTwin(hubConnectionString: string, ca: string, deviceId: string): Promise<RawResponse> {
  const fields = Object.fromEntries(hubConnectionString.split(';').map((part) => [part.slice(0, part.indexOf('=')), part.slice(part.indexOf('=') + 1)]));
  const hostName = String(fields.HostName);
  const token = SharedAccessSignature.create(hostName, String(fields.SharedAccessKeyName), String(fields.SharedAccessKey), Math.floor(Date.now() / 1000) + 600);
  return rawHttps({
    port: portOf(hostName),
    ca,
    method: 'GET',
    path: `/twins/${encodeURIComponent(deviceId)}?api-version=2021-04-12`,
    headers: { authorization: token.toString(), accept: 'application/json' },
  });
}

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

// --- gateway processes -----------------------------------------------------------------------------

export const CLI = path.resolve(__dirname, '../../packages/server/dist/cli.js');

export interface Gateway {
  child: ChildProcess;
  dataDir: string;
  connection: ConnectionInfo;
  ca: string;
  endpoints: DpsEndpoints;
  output(): string;
  /** SIGKILL (a crash); resolves once the process is gone. */
  kill(): Promise<void>;
  /** SIGTERM, then removes the data directory. */
  stop(): Promise<void>;
}

/**
 * `opendps start` (the built CLI, `npx tsc -b` first) as a child process on free ports with its own
 * data directory; resolves once it logged `ready`. `env` adds OPENDPS_* variables; the machine's
 * NODE_EXTRA_CA_CERTS is not passed on.
 */
export function startGateway(args: string[] = [], env: NodeJS.ProcessEnv = {}, options: { httpsPort?: number } = {}): Promise<Gateway> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npx tsc -b' first.`);
  const dataDir = mkdtempSync(path.join(tmpdir(), 'opendps-gateway-'));
  const httpsPort = String(options.httpsPort ?? 0);
  const child = spawn(
    process.execPath,
    [CLI, 'start', '--data-dir', dataDir, '--https-port', httpsPort, '--mqtt-port', '0', '--amqp-port', '0', '--hub-port', '0', ...args],
    { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const onProcessExit = (): boolean => child.kill('SIGKILL');
  process.once('exit', onProcessExit);
  return new Promise((resolve, reject) => {
    const fail = (reason: string): void => {
      child.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
      reject(new Error(`${reason}:\n${output}`));
    };
    const timer = setTimeout(() => fail('the gateway did not log ready within 20 s'), 20_000);
    const early = (code: number | null): void => {
      clearTimeout(timer);
      fail(`the gateway exited with ${code} before ready`);
    };
    child.once('exit', early);
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stdout?.on('data', (chunk: Buffer) => {
      const wasReady = output.includes(' ready on ');
      output += chunk.toString();
      if (wasReady || !output.includes(' ready on ')) return;
      clearTimeout(timer);
      child.off('exit', early);
      const connection = JSON.parse(readFileSync(path.join(dataDir, 'connection.json'), 'utf8')) as ConnectionInfo;
      const ca = readFileSync(connection.caFile, 'utf8');
      resolve({
        child,
        dataDir,
        connection,
        ca,
        endpoints: { mqttPort: portOf(connection.endpoints.mqtt), httpsPort: portOf(connection.endpoints.https), ca },
        output: () => output,
        kill: async () => {
          child.kill('SIGKILL');
          await exited;
        },
        stop: async () => {
          child.kill('SIGTERM');
          await exited;
          process.removeListener('exit', onProcessExit);
          rmSync(dataDir, { recursive: true, force: true });
        },
      });
    });
  });
}
