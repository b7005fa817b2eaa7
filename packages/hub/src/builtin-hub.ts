import { X509Certificate } from 'node:crypto';
import type { Server as HttpServer, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Server as NetServer } from 'node:net';
import type { Duplex } from 'node:stream';
import { createServer, type Server, type TlsOptions, type TLSSocket } from 'node:tls';
import { Errors, silentLogger, toDpsError, type HttpTimeouts, type Logger, type TwinCollection } from '@opendps/model';
import type { Store } from '@opendps/store';
import { loadAedes, type Aedes, type AuthenticateError, type Client, type PublishPacket, type Subscription } from './aedes';
import type { HubConnector, HubDevice, HubDeviceIdentity } from './connector';
import { authenticateDevice } from './device-auth';
import { guardPacketSize } from './frame-guard';
import { loadAccessPolicy, type AccessPolicy } from './access-policy';
import { dispatchByFirstByte } from './dispatch';
import { DeviceRegistry, toHubDevice, type DeviceDocument, type DevicePrecondition, type TwinSections } from './registry';
import { createHubRestServer, sendIotHubError } from './rest';
import { TelemetryLog, type TelemetryMessage } from './telemetry';
import {
  allowedSubscriptions,
  classifyPublish,
  desiredPatchTopic,
  parsePropertyBag,
  twinResponseTopic,
} from './topics';
import { deviceView } from './twin';
import type { HubEvent, HubEventBus } from './events';

export interface BuiltInHubOptions {
  /** The hub's name: the store scope of its registry and what operators link it by. */
  name: string;
  /** The host name devices use to reach it, without a port. */
  host: string;
  /**
   * Its own device MQTT/TLS + REST port (0 picks a free one); the hub is then named `host:port`.
   * Absent: no listener of its own, the server hands it connections from the device listeners
   * (`accept`, `handleRest`) and names it by `sharedPorts`.
   */
  port?: number;
  /**
   * The device listeners' ports, for a hub without a port of its own: it is named `host` when
   * `mqtt` is 8883 (where every SDK dials a bare name) and `host:{mqtt}` otherwise; its service
   * connection string names `host` when `https` is 443 and `host:{https}` otherwise.
   */
  sharedPorts?: { mqtt: number; https: number };
  /** Server certificate (PEM, chain allowed) and key; `ca` is only used to send the chain. */
  tls: { cert: string; key: string; ca?: string } & Pick<TlsOptions, 'SNICallback'>;
  store: Store;
  logger?: Logger;
  /** Address to bind (default: all interfaces). */
  listenAddress?: string;
  /** Other `host:port` names devices may put in their username and SAS `sr` (e.g. `127.0.0.1:8884`). */
  hostAliases?: string[];
  /** Largest device-to-cloud message payload (default 256 KiB, as IoT Hub). */
  maxMessageBytes?: number;
  /** Bounds on slow requests to the REST API (default `DEFAULT_HTTP_TIMEOUTS`). */
  restTimeouts?: HttpTimeouts;
  /**
   * Connection limits applied at TCP accept: the server passes protocol-base's ConnectionLimits
   * (this package sits below protocol-base and cannot import it). Without it, no limits.
   */
  connectionLimits?: { attach(server: NetServer): void; close(): void };
  /** Shares desired-property notifications and disconnects with the other processes serving this hub. */
  events?: HubEventBus;
}

const DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024;
/** Room for the topic and its property bag on top of the payload. */
const TOPIC_ALLOWANCE_BYTES = 16 * 1024;
const DESIRED_FILTER = '$iothub/twin/PATCH/properties/desired/#';

interface Session {
  deviceId: string;
  method: 'sas' | 'x509';
}

/**
 * The built-in IoT hub: a device registry with twins in the state store, and the IoT Hub device
 * MQTT protocol (docs/device-wire.md §8) served by aedes, over TLS on its own port or on streams the
 * server's device listeners hand over (`accept`, `handleRest`). Business rules
 * are aedes hooks: `authenticate` (SAS or X.509 thumbprint), `authorizePublish` (the device's own
 * topics; twin requests are answered here), `authorizeSubscribe`, and `authorizeForward`, which
 * never lets one device's publish reach another device.
 */
export class BuiltInHub implements HubConnector {
  readonly name: string;
  readonly registry: DeviceRegistry;
  private readonly telemetry = new TelemetryLog();
  private readonly logger: Logger;
  private readonly maxMessageBytes: number;
  private readonly sessionsByClient = new WeakMap<Client, Session>();
  /** DER leaf certificates of streams handed over by the device listeners (not TLS sockets themselves). */
  private readonly peerCertificates = new WeakMap<object, Buffer>();
  /** Connected devices by folded device id (ids are case-insensitive in the store). */
  private readonly connected = new Map<string, Client>();
  private broker: Aedes | undefined;
  private server: Server | undefined;
  /** The service REST API: an http.Server without a listener, fed the non-MQTT TLS connections. */
  private restServer: HttpServer | undefined;
  /** Connections handed to the REST server (it has no listener, so it cannot close them itself). */
  private readonly restSockets = new Set<TLSSocket>();
  private boundPort: number | undefined;
  private policy: AccessPolicy | undefined;
  private tls: BuiltInHubOptions['tls'];
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly options: BuiltInHubOptions) {
    this.name = options.name;
    this.tls = options.tls;
    this.registry = new DeviceRegistry(options.store, options.name);
    this.logger = (options.logger ?? silentLogger).child({ hub: options.name, category: 'DeviceOperations' });
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  }

  /** What DPS returns as `assignedHub` and devices put in `HostName=` (docs/device-wire.md "Hub addresses"). */
  get hostName(): string {
    const shared = this.options.sharedPorts;
    if (this.options.port === undefined && shared) return withPort(this.options.host, shared.mqtt, 8883);
    const port = this.boundPort ?? (this.options.port || undefined);
    if (port === undefined) throw Errors.hubUnavailable(`Hub '${this.name}' has not started.`);
    return `${this.options.host}:${port}`;
  }

  /** True when the hub has no listener of its own and is served on the device listeners. */
  get onDeviceListeners(): boolean {
    return this.options.port === undefined;
  }

  /** The host name without a port (what MQTT usernames, SNI and Host headers are matched on). */
  get host(): string {
    return this.options.host;
  }

  get port(): number {
    if (this.boundPort === undefined) throw Errors.hubUnavailable(`Hub '${this.name}' has not started.`);
    return this.boundPort;
  }

  /** The `iothubowner` policy (keys persisted with the hub); available once started. */
  get accessPolicy(): AccessPolicy {
    if (!this.policy) throw Errors.hubUnavailable(`Hub '${this.name}' has not started.`);
    return this.policy;
  }

  /**
   * `HostName=…;SharedAccessKeyName=iothubowner;SharedAccessKey=…`, naming where its REST API is:
   * the hub's own `host:port`, or on the HTTPS listener `host` on 443 (azure-iothub always dials
   * 443 and cannot take a port) and `host:{https}` elsewhere.
   */
  get connectionString(): string {
    const policy = this.accessPolicy;
    const shared = this.options.sharedPorts;
    const hostName = this.options.port === undefined && shared ? withPort(this.options.host, shared.https, 443) : this.hostName;
    return `HostName=${hostName};SharedAccessKeyName=${policy.keyName};SharedAccessKey=${policy.primaryKey}`;
  }

  /**
   * Every name this hub answers to in devices' usernames and in device and service SAS `sr`: on the
   * device listeners the bare host and the host with either listener's port, since a client may
   * have been handed any of them.
   */
  get hostNames(): string[] {
    const shared = this.options.sharedPorts;
    const names = [this.hostName, ...(this.options.hostAliases ?? [])];
    if (this.options.port === undefined && shared) {
      const { host } = this.options;
      names.push(host, `${host}:${shared.mqtt}`, `${host}:${shared.https}`);
    }
    return [...new Set(names)];
  }

  async start(): Promise<void> {
    if (this.server) return;
    this.policy = await loadAccessPolicy(this.options.store, this.name);
    this.unsubscribe = this.options.events?.subscribe((event) => {
      if (event.hub.toLowerCase() === this.name.toLowerCase()) this.deliver(event);
    });
    const { Aedes } = loadAedes();
    const broker = await Aedes.createBroker({
      authenticate: (client, username, password, done) => {
        this.authenticate(client, username, password).then(
          (error) => (error ? done(error, false) : done(null, true)),
          () => done(connackError(3, 'authentication failed'), false),
        );
      },
      authorizePublish: (client, packet, done) => {
        this.authorizePublish(client, packet).then(
          () => done(null),
          (error: unknown) => done(error instanceof Error ? error : new Error(String(error))),
        );
      },
      authorizeSubscribe: (client, subscription, done) => done(null, this.authorizeSubscribe(client, subscription)),
      // Only packets the hub itself sends carry no clientId; device publishes are never routed.
      authorizeForward: (_client, packet) => ((packet as { clientId?: string }).clientId === undefined ? packet : null),
    });
    broker.on('client', (client) => this.onConnected(client));
    broker.on('clientDisconnect', (client) => this.onDisconnected(client));
    broker.on('clientError', (client, error) => this.logger.debug({ deviceId: client.id, err: error.message }, 'device connection error'));
    broker.on('connectionError', (_client, error) => this.logger.debug({ err: error.message }, 'connection error before CONNECT'));
    // aedes emits 'error' for internal failures; an unhandled one would end the process.
    (broker as unknown as NodeJS.EventEmitter).on('error', (error: Error) => this.logger.error({ err: error.message }, 'broker error'));
    this.broker = broker;
    this.restServer = createHubRestServer(this, this.logger.child({ category: 'Registry' }), this.options.restTimeouts);
    if (this.options.port === undefined) {
      this.logger.info({ hostName: this.hostName }, 'built-in hub served on the device listeners');
      return;
    }

    const server = createServer(
      // noDelay: a small reply must not wait for the device's delayed ACK (Nagle), ~40 ms per round trip.
      { ...this.secureContext(), ...(this.tls.SNICallback ? { SNICallback: this.tls.SNICallback } : {}), requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2', handshakeTimeout: 10_000, noDelay: true },
      (socket) => this.dispatch(socket),
    );
    this.options.connectionLimits?.attach(server);
    // Node reports a failed or timed-out handshake but leaves the socket open: close it.
    server.on('tlsClientError', (error, socket) => {
      this.logger.debug({ err: error.message }, 'TLS handshake failed');
      socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.listenAddress, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (error) => this.logger.error({ err: error.message }, 'hub listener error'));
    this.server = server;
    this.boundPort = (server.address() as AddressInfo).port;
    this.logger.info({ hostName: this.hostName }, 'built-in hub listening');
  }

  /** New connections get this certificate (a reload); established ones keep theirs. */
  setTls(tls: BuiltInHubOptions['tls']): void {
    // The SNI callback (certificates for hub host names) outlives a reload of the default pair.
    this.tls = { ...(this.tls.SNICallback ? { SNICallback: this.tls.SNICallback } : {}), ...tls };
    this.server?.setSecureContext(this.secureContext());
  }

  private secureContext(): { cert: string; key: string } {
    const { cert, key, ca } = this.tls;
    return { cert: ca ? `${cert.trim()}\n${ca}` : cert, key };
  }

  async stop(): Promise<void> {
    const { server, broker, restServer } = this;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.server = undefined;
    this.broker = undefined;
    this.restServer = undefined;
    for (const socket of this.restSockets) socket.destroy();
    this.restSockets.clear();
    restServer?.close();
    for (const client of this.connected.values()) client.close();
    this.connected.clear();
    this.options.connectionLimits?.close();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    if (broker) await new Promise<void>((resolve) => broker.close(() => resolve()));
    this.boundPort = undefined;
  }

  /**
   * Serves one TLS connection on the hub port: device MQTT when its first byte is a CONNECT (0x10),
   * else the service REST API over HTTP/1.1 (docs/architecture.md "Contract details").
   */
  dispatch(socket: TLSSocket): void {
    socket.on('error', (error) => this.logger.debug({ err: error.message }, 'hub socket error'));
    dispatchByFirstByte(socket, {
      mqtt: (routed) => this.accept(routed),
      http: (routed) => {
        const rest = this.restServer;
        if (!rest) {
          routed.destroy();
          return;
        }
        this.restSockets.add(routed);
        routed.once('close', () => this.restSockets.delete(routed));
        rest.emit('connection', routed);
      },
    });
  }

  /**
   * Serves one device MQTT byte stream: a TLS socket of the hub's own port, or a stream the device
   * listeners handed over (TLS or WebSocket) with the client certificate of its TLS handshake.
   */
  accept(socket: Duplex, peer: { certificate?: Buffer } = {}): void {
    const broker = this.broker;
    if (!broker) {
      socket.destroy();
      return;
    }
    if (peer.certificate) this.peerCertificates.set(socket, peer.certificate);
    socket.on('error', (error) => this.logger.debug({ err: error.message }, 'device socket error'));
    capSubscriptionQos(broker.handle(socket));
    guardPacketSize(socket, this.maxMessageBytes + TOPIC_ALLOWANCE_BYTES, () => {
      this.logger.warn({ limit: this.maxMessageBytes }, 'MQTT packet over the size limit; closing the connection');
      socket.destroy();
    });
  }

  /** One request to the service REST API arriving on the HTTPS listener (a hub on the device listeners). */
  handleRest(req: IncomingMessage, res: ServerResponse): void {
    const rest = this.restServer;
    if (!rest) {
      sendIotHubError(res, Errors.hubUnavailable(`Hub '${this.name}' has not started.`));
      return;
    }
    rest.emit('request', req, res);
  }

  // --- HubConnector and the registry ---------------------------------------------------------

  async getDevice(deviceId: string): Promise<HubDevice | undefined> {
    const doc = await this.registry.get(deviceId);
    return doc && toHubDevice(doc);
  }

  async upsertDevice(identity: HubDeviceIdentity, twin?: TwinSections, hint?: { absent?: boolean }): Promise<void> {
    await this.writeDevice(identity, twin, undefined, hint);
  }

  /**
   * `upsertDevice` with an optional precondition (If-Match), returning the documents before and
   * after: a connected device is disconnected when disabled or re-keyed, else told of desired changes.
   */
  async writeDevice(
    identity: HubDeviceIdentity,
    twin?: TwinSections,
    precondition?: DevicePrecondition,
    hint?: { absent?: boolean },
  ): Promise<{ previous?: DeviceDocument; current: DeviceDocument }> {
    const written = await this.registry.upsert(identity, twin, precondition, hint);
    const { previous, current } = written;
    const deviceId = current.identity.deviceId;
    const credentialsChanged = JSON.stringify(previous?.identity.authentication) !== JSON.stringify(current.identity.authentication);
    // A device with no previous identity cannot be connected anywhere: nothing to tell.
    if (!previous) return written;
    if (current.identity.status !== 'enabled' || credentialsChanged) {
      this.announce({ hub: this.name, deviceId, kind: 'disconnect' });
    } else if (twin?.desired !== undefined) {
      const patch = replacementPatch(previous.twin.desired, current.twin.desired);
      this.announce({ hub: this.name, deviceId, kind: 'desired', patch, version: current.twin.desiredVersion });
    }
    return written;
  }

  async deleteDevice(deviceId: string): Promise<void> {
    const deleted = await this.removeDevice(deviceId);
    if (!deleted) throw Errors.deviceNotFound(`Device '${deviceId}' is not registered on this hub.`);
  }

  /** Deletes the device (under an optional precondition) and disconnects it; false when there was none. */
  async removeDevice(deviceId: string, precondition?: DevicePrecondition): Promise<boolean> {
    const deleted = await this.registry.delete(deviceId, precondition);
    if (deleted) this.announce({ hub: this.name, deviceId, kind: 'disconnect' });
    return deleted;
  }

  /** A service twin PATCH: tags and desired merge-patched together; a connected device is told of desired changes. */
  async patchTwin(
    deviceId: string,
    patch: { tags?: TwinCollection; desired?: TwinCollection },
    precondition?: DevicePrecondition,
  ): Promise<DeviceDocument> {
    const doc = await this.registry.patchTwin(deviceId, patch, precondition);
    if (patch.desired !== undefined) {
      const { $version: _version, $metadata: _metadata, ...changes } = patch.desired;
      this.announce({ hub: this.name, deviceId, kind: 'desired', patch: changes, version: doc.twin.desiredVersion });
    }
    return doc;
  }

  isConnected(deviceId: string): boolean {
    return this.connected.has(deviceId.toLowerCase());
  }

  /** JSON merge patch of the desired properties (null deletes); a connected device is notified. */
  async updateDesired(deviceId: string, patch: TwinCollection): Promise<HubDevice> {
    const doc = await this.registry.patchDesired(deviceId, patch);
    const { $version: _version, $metadata: _metadata, ...changes } = patch;
    this.announce({ hub: this.name, deviceId, kind: 'desired', patch: changes, version: doc.twin.desiredVersion });
    return toHubDevice(doc);
  }

  /** Device-to-cloud messages received (by one device, or in all). */
  telemetryCount(deviceId?: string): number {
    return this.telemetry.count(deviceId);
  }

  /** The most recent device-to-cloud messages kept in memory (bounded), oldest first. */
  receivedMessages(deviceId?: string): TelemetryMessage[] {
    return this.telemetry.messages(deviceId);
  }

  /** Ids of the devices connected to this hub process. */
  connectedDevices(): string[] {
    return [...this.connected.values()].map((client) => this.sessionsByClient.get(client)?.deviceId ?? client.id);
  }

  // --- device MQTT hooks -------------------------------------------------------------------------

  private async authenticate(client: Client, username: string | undefined, password: Buffer | undefined): Promise<AuthenticateError | undefined> {
    const outcome = await authenticateDevice(
      { clientId: client.id, username, password, peerCertificate: peerCertificateOf(client, this.peerCertificates.get(client.conn)) },
      { hostNames: this.hostNames, lookup: (id) => this.registry.get(id) },
    );
    if (!outcome.ok) {
      this.logger.warn({ deviceId: client.id, returnCode: outcome.code, reason: outcome.reason }, 'device connection refused');
      return connackError(outcome.code, outcome.reason);
    }
    this.sessionsByClient.set(client, { deviceId: outcome.device.identity.deviceId, method: outcome.method });
    return undefined;
  }

  private onConnected(client: Client): void {
    const session = this.sessionsByClient.get(client);
    if (!session) return;
    const key = session.deviceId.toLowerCase();
    // aedes replaces a same-clientId connection itself; this also covers a differently cased id.
    const previous = this.connected.get(key);
    if (previous && previous !== client) previous.close();
    this.connected.set(key, client);
    this.logger.info({ deviceId: session.deviceId, auth: session.method }, 'device connected');
  }

  private onDisconnected(client: Client): void {
    const session = this.sessionsByClient.get(client);
    if (!session) return;
    const key = session.deviceId.toLowerCase();
    if (this.connected.get(key) === client) this.connected.delete(key);
    this.logger.info({ deviceId: session.deviceId }, 'device disconnected');
  }

  private authorizeSubscribe(client: Client, subscription: Subscription): Subscription | null {
    const session = this.sessionsByClient.get(client);
    if (!session || !allowedSubscriptions(client.id).has(subscription.topic)) {
      this.logger.warn({ deviceId: client.id, topic: subscription.topic }, 'subscription refused');
      return null; // SUBACK 0x80
    }
    return subscription;
  }

  /** Resolves to accept (QoS 1 is then PUBACKed); rejects to close the connection, as IoT Hub does. */
  private async authorizePublish(client: Client | null, packet: PublishPacket): Promise<void> {
    const session = client && this.sessionsByClient.get(client);
    if (!client || !session) throw new Error('not authenticated');
    if (packet.qos === 2) throw new Error('QoS 2 is not supported');
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    if (payload.length > this.maxMessageBytes) throw new Error('message too large');
    const request = classifyPublish(client.id, packet.topic);
    if (!request) {
      this.logger.warn({ deviceId: session.deviceId, topic: packet.topic }, 'publish refused; closing the connection');
      throw new Error(`publishing to '${packet.topic}' is not allowed`);
    }
    packet.retain = false; // IoT Hub keeps no retained messages
    switch (request.kind) {
      case 'malformed':
        throw new Error(request.reason);
      case 'telemetry':
        this.telemetry.record({
          deviceId: session.deviceId,
          properties: parsePropertyBag(request.propertyBag),
          payload,
          receivedUtc: new Date().toISOString(),
        });
        return;
      case 'twinGet':
        await this.answerTwin(client, request.rid, async () => {
          const doc = await this.requireDevice(session.deviceId);
          return { status: 200, body: Buffer.from(JSON.stringify(deviceView(doc.twin))) };
        });
        return;
      case 'twinPatchReported':
        await this.answerTwin(client, request.rid, async () => {
          const patch = parseJsonPayload(payload);
          const doc = await this.registry.patchReported(session.deviceId, patch);
          // docs/device-wire.md, trap 17: 204 with a zero-length body; the new version is in the topic.
          return { status: 204, body: Buffer.alloc(0), version: doc.twin.reportedVersion };
        });
        return;
      case 'methodResponse':
        // Direct methods are not invoked by this hub yet; a response has nobody to reach.
        this.logger.debug({ deviceId: session.deviceId, rid: request.rid }, 'method response without a pending call');
        return;
    }
  }

  private async answerTwin(
    client: Client,
    rid: string,
    handle: () => Promise<{ status: number; body: Buffer; version?: number }>,
  ): Promise<void> {
    let answer: { status: number; body: Buffer; version?: number };
    try {
      answer = await handle();
    } catch (error) {
      const dpsError = toDpsError(error);
      if (dpsError.status >= 500) this.logger.error({ deviceId: client.id, err: String(error) }, 'twin request failed');
      answer = { status: dpsError.status, body: Buffer.from(JSON.stringify(dpsError.toJSON())) };
    }
    await new Promise<void>((resolve) =>
      client.publish(
        { cmd: 'publish', topic: twinResponseTopic(answer.status, rid, answer.version), payload: answer.body, qos: 0, retain: false, dup: false },
        () => resolve(),
      ),
    );
  }

  private async requireDevice(deviceId: string): Promise<DeviceDocument> {
    const doc = await this.registry.get(deviceId);
    if (!doc) throw Errors.deviceNotFound(`Device '${deviceId}' is not registered on this hub.`);
    return doc;
  }

  /** Tells the device's connection here, and the processes where it may be connected instead. */
  private announce(event: HubEvent): void {
    this.deliver(event);
    this.options.events?.publish(event);
  }

  private deliver(event: HubEvent): void {
    const client = this.connected.get(event.deviceId.toLowerCase());
    if (!client) return;
    if (event.kind === 'disconnect') {
      this.logger.info({ deviceId: event.deviceId }, 'device identity changed; disconnecting it');
      client.close();
    } else {
      this.notifyDesired(client, event.patch, event.version);
    }
  }

  /** `$iothub/twin/PATCH/properties/desired/?$version=n`, only to a device that subscribed to it. */
  private notifyDesired(client: Client, patch: TwinCollection, version: number): void {
    const subscriptions = (client as unknown as { subscriptions?: Record<string, unknown> }).subscriptions ?? {};
    if (!(DESIRED_FILTER in subscriptions)) return;
    client.publish(
      {
        cmd: 'publish',
        topic: desiredPatchTopic(version),
        payload: Buffer.from(JSON.stringify({ ...patch, $version: version })),
        qos: 0,
        retain: false,
        dup: false,
      },
      (error) => error && this.logger.debug({ deviceId: client.id, err: error.message }, 'desired notification not delivered'),
    );
  }
}

/**
 * IoT Hub grants at most QoS 1 ([hub-mqtt]). aedes computes SUBACK from the requested QoS before the
 * authorizeSubscribe hook runs, so the request is lowered as it leaves the parser (a private field,
 * used only if present).
 */
function capSubscriptionQos(client: Client): void {
  const parser = (client as unknown as { _parser?: NodeJS.EventEmitter })._parser;
  parser?.prependListener('packet', (packet: { cmd?: string; subscriptions?: Array<{ qos: number }> }) => {
    if (packet.cmd !== 'subscribe' || !Array.isArray(packet.subscriptions)) return;
    for (const subscription of packet.subscriptions) if (subscription.qos > 1) subscription.qos = 1;
  });
}

/** `host`, or `host:port` when the port is not the protocol's standard one. */
function withPort(host: string, port: number, standard: number): string {
  return port === standard ? host : `${host}:${port}`;
}

function connackError(returnCode: number, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

function peerCertificateOf(client: Client, handedOver: Buffer | undefined): X509Certificate | undefined {
  const socket = client.conn as Partial<TLSSocket>;
  const raw = handedOver ?? (typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate().raw : undefined);
  if (!raw) return undefined;
  try {
    return new X509Certificate(raw);
  } catch {
    return undefined;
  }
}

function parseJsonPayload(payload: Buffer): unknown {
  try {
    return JSON.parse(payload.toString('utf8'));
  } catch {
    throw Errors.invalidJson('The twin patch is not valid JSON.');
  }
}

/** The desired patch equivalent to replacing `before` with `after` (removed keys become null). */
function replacementPatch(before: TwinCollection, after: TwinCollection): TwinCollection {
  const patch: TwinCollection = { ...after };
  for (const key of Object.keys(before)) if (!(key in after)) patch[key] = null;
  return patch;
}
