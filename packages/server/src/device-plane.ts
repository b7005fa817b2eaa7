import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TlsOptions } from 'node:tls';
import { ConfiguredLatencySource, HttpsWebhookClient } from '@opendps/allocation';
import { createDpsAmqpFrontEnd } from '@opendps/amqp';
import { createDeviceApi, createWebSocketUpgrade } from '@opendps/http';
import type { Logger } from '@opendps/model';
import { createDpsMqttFrontEnd, type ConnectRouter, type MqttListener as TlsListener } from '@opendps/mqtt';
import type { ConnectionLimitsOptions } from '@opendps/protocol-base';
import { DpsRegistrationService, type HubDirectory, type RegistrationServiceOptions } from '@opendps/registration';
import type { Store } from '@opendps/store';
import { webhookPolicy, type ServerConfig } from './config';
import type { Route } from './https';
import type { InstanceRegistry } from './instances';
import type { Listener } from './lifecycle';
import type { ServerMetrics } from './observability/metrics';
import { registrationTiming, webhookTiming, type Clock, type ServerTimeouts } from './timing';

export interface DevicePlaneOptions {
  config: ServerConfig;
  store: Store;
  registry: InstanceRegistry;
  /** The device listeners' TLS: certificate and key, and any other server option (e.g. `SNICallback`). */
  tls: { cert: string; key: string } & Pick<TlsOptions, 'SNICallback'>;
  logger: Logger;
  /** Where linked hubs are reached: the server's HubManager (hubs/), which also runs the built-in hubs. */
  hubs: HubDirectory;
  /** Hands MQTT connections whose CONNECT names a built-in hub to that hub (hubs/device-listener-routes.ts). */
  hubConnections?: ConnectRouter;
  /** Default Date.now. */
  clock?: Clock;
  timeouts?: ServerTimeouts;
  /** Counts registrations, connections, store and webhook latency. */
  metrics?: ServerMetrics;
}

/**
 * Everything devices talk to: the registration service, its front-ends (MQTT and AMQP over TLS;
 * HTTPS and both WebSocket flavours on the shared HTTPS listener). The hubs devices are assigned to
 * are run by the HubManager (hubs/).
 */
export interface DevicePlane {
  /** Mounted on the HTTPS listener after the service API. */
  routes: Route[];
  /** The HTTPS listener's `upgrade` event (`/$iothub/websocket`, by subprotocol). */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** The MQTT and AMQP listeners. */
  listeners: Listener[];
  /** New MQTT and AMQP connections get this certificate; established ones keep theirs. */
  setTls(tls: { cert: string; key: string }): void;
  /** Registrations being answered or assigned on this node now. */
  readonly inFlight: number;
  /** Open MQTT and AMQP (over TLS) connections now. */
  readonly connections: number;
  /**
   * The MQTT and AMQP listeners stop accepting; in-flight registrations get `timeoutMs` to be
   * answered and recorded (what is left stays leased in the store: another node's poll takes it
   * over); then every connection is ended cleanly. Resolves with whether all settled in time.
   */
  drain(timeoutMs: number, lingerMs?: number): Promise<boolean>;
  /**
   * Ends what outlives the listeners (the webhook client's keep-alive connections, and the MQTT and
   * AMQP front-ends whose listener never started, e.g. when another port was taken: their brokers hold timers).
   */
  close(): Promise<void>;
}

export function createDevicePlane(options: DevicePlaneOptions): DevicePlane {
  const { config, store, registry, tls, logger, hubs: directory, timeouts = {}, metrics } = options;
  const deviceLog = logger.child({ category: 'DeviceOperations' });

  // Lowest-latency allocation reads the configured network and latency maps; custom allocation
  // webhooks are trusted with the system CAs plus `webhookCaFile`, and reach only what the policy allows.
  const latency = new ConfiguredLatencySource(config.latency);
  const webhook = new HttpsWebhookClient({
    ...(config.webhookCaFile ? { caFile: config.webhookCaFile } : {}),
    ...webhookTiming(timeouts, config.webhook),
    ...webhookPolicy(config),
  });
  const registration = new DpsRegistrationService({
    store: metrics ? metrics.timedStore(store) : store,
    instances: registry.instances,
    hubs: directory,
    logger,
    latency,
    webhook: metrics ? metrics.timedWebhook(webhook) : webhook,
    ...(metrics ? { metrics } : {}),
    ...registrationTiming(timeouts, registrationTuning(process.env), options.clock),
  });
  const connect = timeouts.connectTimeoutMs !== undefined ? { connectTimeoutMs: timeouts.connectTimeoutMs } : {};
  const mqtt = createDpsMqttFrontEnd({
    registration,
    logger: deviceLog,
    ...connect,
    ...(options.hubConnections ? { route: options.hubConnections } : {}),
    ...(config.limits?.mqttRequestTimeoutMs ? { requestTimeoutMs: config.limits.mqttRequestTimeoutMs } : {}),
  });
  const amqp = createDpsAmqpFrontEnd({ registration, logger: deviceLog, tpm: registration.tpm, ...connect });
  const webSockets = createWebSocketUpgrade(
    {
      mqtt: (ws, req) => {
        metrics?.connection('mqtt-ws', ws);
        mqtt.handleWebSocket(ws, req);
      },
      AMQPWSB10: (ws, req) => {
        metrics?.connection('amqp-ws', ws);
        amqp.handleWebSocket(ws, req);
      },
    },
    { logger: deviceLog },
  );

  const limits = connectionLimitsOf(config);
  const listeners = [
    frontEndListener('mqtt', config.ports.mqtt, config.bind, mqtt, tls, limits, metrics),
    frontEndListener('amqp', config.ports.amqp, config.bind, amqp, tls, limits, metrics),
  ];

  return {
    routes: [createDeviceApi({ registration, logger: deviceLog })],
    upgrade: (req, socket, head) => webSockets.handleUpgrade(req, socket, head),
    listeners,
    setTls: (next) => {
      for (const listener of listeners) listener.setTls(next);
    },
    get inFlight() {
      return registration.inFlight;
    },
    get connections() {
      return listeners.reduce((sum, listener) => sum + listener.connections, 0);
    },
    drain: async (timeoutMs, lingerMs) => {
      for (const listener of listeners) listener.stopAccepting();
      const settled = await registration.settle(timeoutMs);
      await Promise.all([mqtt.endConnections(lingerMs), amqp.endConnections(lingerMs)]);
      return settled;
    },
    close: async () => {
      webhook.close();
      await Promise.all(listeners.map((listener) => listener.close()));
    },
  };
}

/** The configured connection limits of every device listener, in protocol-base's terms. */
export function connectionLimitsOf(config: ServerConfig): ConnectionLimitsOptions {
  const { maxConnectionsPerAddress, maxConnections } = config.limits ?? {};
  return {
    ...(maxConnectionsPerAddress ? { maxPerAddress: maxConnectionsPerAddress } : {}),
    ...(maxConnections ? { maxTotal: maxConnections } : {}),
  };
}

interface FrontEnd {
  listen(options: {
    port: number;
    host: string;
    tls: { cert: string; key: string };
    connectionLimits: ConnectionLimitsOptions;
    onSocket?: (socket: Socket) => void;
  }): Promise<TlsListener>;
  close(): Promise<void>;
}

interface FrontEndListener extends Listener {
  close(): Promise<void>;
  setTls(tls: { cert: string; key: string }): void;
  stopAccepting(): void;
  readonly connections: number;
}

function frontEndListener(
  name: 'mqtt' | 'amqp',
  port: number,
  host: string,
  frontEnd: FrontEnd,
  initialTls: { cert: string; key: string },
  connectionLimits: ConnectionLimitsOptions,
  metrics?: ServerMetrics,
): FrontEndListener {
  let listening: TlsListener | undefined;
  let closed: Promise<void> | undefined;
  let tls = initialTls;
  const close = (): Promise<void> => (closed ??= frontEnd.close());
  return {
    name,
    start: async () => {
      const onSocket = metrics ? { onSocket: (socket: Socket) => metrics.connection(name, socket) } : {};
      listening = await frontEnd.listen({ port, host, tls, connectionLimits, ...onSocket });
      return listening.port;
    },
    setTls: (next) => {
      tls = next;
      listening?.setSecureContext(next);
    },
    stopAccepting: () => listening?.stopAccepting(),
    get connections() {
      return listening?.connections ?? 0;
    },
    stop: async () => {
      await listening?.close();
      await close();
    },
    close,
  };
}

/**
 * Registration timing from the environment, for tests and operators: `OPENDPS_ANSWER_WITHIN_MS`
 * (answer `register` at once when done within this time; 0 always answers 202 and the device polls;
 * default 1500) and `OPENDPS_LEASE_SECONDS` (how long a node owns an in-flight registration before a
 * poll on another node takes it over; default 30).
 */
export function registrationTuning(env: NodeJS.ProcessEnv): Pick<RegistrationServiceOptions, 'answerWithinMs' | 'leaseSeconds'> {
  const read = (name: string, min: number): number | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === '') return undefined;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be an integer of at least ${min}, not '${raw}'.`);
    return value;
  };
  const answerWithinMs = read('OPENDPS_ANSWER_WITHIN_MS', 0);
  const leaseSeconds = read('OPENDPS_LEASE_SECONDS', 1);
  return { ...(answerWithinMs !== undefined ? { answerWithinMs } : {}), ...(leaseSeconds !== undefined ? { leaseSeconds } : {}) };
}
