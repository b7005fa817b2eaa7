import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { createDpsAmqpFrontEnd } from '@opendps/amqp';
import { createDeviceApi, createWebSocketUpgrade } from '@opendps/http';
import { BuiltInHub } from '@opendps/hub';
import { Errors, type LinkedHub, type Logger, type ProvisioningInstance } from '@opendps/model';
import { createDpsMqttFrontEnd } from '@opendps/mqtt';
import { DpsRegistrationService, type HubDirectory, type RegistrationServiceOptions } from '@opendps/registration';
import type { Store } from '@opendps/store';
import type { ServerConfig } from './config';
import type { Route } from './https';
import type { InstanceRegistry } from './instances';
import { instanceCollection } from './instances';
import type { Listener } from './lifecycle';

export interface DevicePlaneOptions {
  config: ServerConfig;
  store: Store;
  registry: InstanceRegistry;
  tls: { cert: string; key: string };
  logger: Logger;
}

/**
 * Everything devices talk to: the registration service, its front-ends (MQTT and AMQP over TLS;
 * HTTPS and both WebSocket flavours on the shared HTTPS listener) and the built-in hubs devices are
 * assigned to.
 */
export interface DevicePlane {
  /** Mounted on the HTTPS listener after the service API. */
  routes: Route[];
  /** The HTTPS listener's `upgrade` event (`/$iothub/websocket`, by subprotocol). */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** The MQTT and AMQP listeners and one listener per built-in hub. */
  listeners: Listener[];
  /** Built-in hubs by name (lower case). */
  hubs: ReadonlyMap<string, BuiltInHub>;
  /** After the hubs listen: store their real `host:port` on the instances that link them. */
  publishHubHostNames(): Promise<void>;
}

export function createDevicePlane(options: DevicePlaneOptions): DevicePlane {
  const { config, store, registry, tls, logger } = options;
  const deviceLog = logger.child({ category: 'DeviceOperations' });

  const hubs = new Map<string, BuiltInHub>();
  for (const hub of registry.instances().flatMap((instance) => instance.linkedHubs)) {
    if (!hub.builtin || hubs.has(hub.name.toLowerCase())) continue;
    hubs.set(
      hub.name.toLowerCase(),
      new BuiltInHub({ name: hub.name, host: config.host, port: hub.builtin.port, tls, store, logger: deviceLog.child({ hub: hub.name }) }),
    );
  }
  const directory: HubDirectory = {
    connector(hub: LinkedHub) {
      const builtIn = hubs.get(hub.name.toLowerCase());
      if (builtIn) return builtIn;
      throw Errors.hubUnavailable(`The linked hub '${hub.name}' has no connector on this node.`);
    },
  };

  const registration = new DpsRegistrationService({ store, instances: registry.instances, hubs: directory, logger, ...registrationTuning(process.env) });
  const mqtt = createDpsMqttFrontEnd({ registration, logger: deviceLog });
  const amqp = createDpsAmqpFrontEnd({ registration, logger: deviceLog, tpm: registration.tpm });
  const webSockets = createWebSocketUpgrade(
    {
      mqtt: (ws, req) => mqtt.handleWebSocket(ws, req),
      AMQPWSB10: (ws, req) => amqp.handleWebSocket(ws, req),
    },
    { logger: deviceLog },
  );

  const listeners: Listener[] = [
    frontEndListener('mqtt', config.ports.mqtt, mqtt, tls),
    frontEndListener('amqp', config.ports.amqp, amqp, tls),
    ...[...hubs.values()].map(
      (hub): Listener => ({
        name: `hub:${hub.name}`,
        start: async () => {
          await hub.start();
          return hub.port;
        },
        stop: () => hub.stop(),
      }),
    ),
  ];

  async function publishHubHostNames(): Promise<void> {
    const collection = instanceCollection(store);
    for (const { name } of registry.instances()) {
      // Compare-and-set against the stored instance: another node or the admin API may write it too.
      for (let attempt = 0; attempt < 5; attempt++) {
        const stored = await collection.get(name);
        if (!stored) break;
        const linkedHubs = stored.value.linkedHubs.map((hub) => {
          const running = hubs.get(hub.name.toLowerCase());
          return running && running.hostName !== hub.hostName ? { ...hub, hostName: running.hostName } : hub;
        });
        if (linkedHubs.every((hub, i) => hub === stored.value.linkedHubs[i])) break;
        const updated: ProvisioningInstance = { ...stored.value, linkedHubs };
        const written = await collection.put(name, updated, { ifMatch: stored.etag }).then(
          () => true,
          (error: unknown) => {
            if ((error as { status?: number }).status !== 412) throw error;
            return false;
          },
        );
        if (written) break;
      }
    }
    await registry.refresh();
  }

  return {
    routes: [createDeviceApi({ registration, logger: deviceLog })],
    upgrade: (req, socket, head) => webSockets.handleUpgrade(req, socket, head),
    listeners,
    hubs,
    publishHubHostNames,
  };
}

interface FrontEnd {
  listen(options: { port: number; tls: { cert: string; key: string } }): Promise<{ port: number; close(): Promise<void> }>;
  close(): Promise<void>;
}

function frontEndListener(name: string, port: number, frontEnd: FrontEnd, tls: { cert: string; key: string }): Listener {
  let listening: { port: number; close(): Promise<void> } | undefined;
  return {
    name,
    start: async () => {
      listening = await frontEnd.listen({ port, tls });
      return listening.port;
    },
    stop: async () => {
      await listening?.close();
      await frontEnd.close();
    },
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
