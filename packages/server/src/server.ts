import type { BuiltInHub } from '@opendps/hub';
import type { Logger, ProvisioningInstance } from '@opendps/model';
import { createServiceApi } from '@opendps/service-api';
import { openStore, type Store } from '@opendps/store';
import { validateConfigFile, withDefaults, type ConfigLayer, type Ports, type ServerConfig } from './config';
import { connectionInfo, writeConnectionFile, type ConnectionInfo, type Endpoints } from './connection-file';
import { createDevicePlane } from './device-plane';
import { createHttpsListener } from './https';
import { bootstrapInstances, createInstanceRegistry } from './instances';
import { Lifecycle } from './lifecycle';
import { createLogger } from './logger';
import { ensureDevPki } from './pki/dev-pki';

/** What createServer accepts: a resolved config, or just the parts that differ from the defaults. */
export interface ServerOptions extends Omit<ConfigLayer, 'ports' | 'redisUrl'> {
  dataDir: string;
  ports?: Partial<Ports>;
  redisUrl?: string;
  /** Default: pino JSON on stdout. */
  logger?: Logger;
  /** How often the instance snapshot is re-read from the store (other nodes may change it). */
  instanceRefreshMs?: number;
}

export interface RunningServer {
  readonly config: ServerConfig;
  readonly store: Store;
  /** The current snapshot of provisioning instances (the first is the top-level one). */
  instances(): readonly ProvisioningInstance[];
  readonly endpoints: Endpoints;
  /** What connection.json holds. */
  readonly connection: ConnectionInfo;
  readonly connectionFile: string;
  readonly caFile: string;
  /** The built-in hubs this process serves, by name (lower case): tests read what devices sent them. */
  readonly hubs: ReadonlyMap<string, BuiltInHub>;
  /** Closes the listeners, then the store. Idempotent. */
  stop(): Promise<void>;
}

/**
 * The composition root: dev PKI, store, instances, then every listener; `connection.json` and the
 * `ready` log line come last, when everything answers. Resolves with the server running.
 */
export async function createServer(options: ServerOptions): Promise<RunningServer> {
  const { logger: givenLogger, instanceRefreshMs, configFile, ...layer } = options;
  // Programmatic options get the same checks as a config file.
  validateConfigFile(stripUndefined(layer), 'createServer options');
  const config = withDefaults([layer], process.cwd(), configFile);
  const logger = givenLogger ?? createLogger();
  const serviceLog = logger.child({ category: 'ServiceOperations' });

  const pki = ensureDevPki(config.dataDir, config.host);
  if (pki.created.ca) serviceLog.info({ caFile: pki.caFile }, 'created the development root CA');
  if (pki.created.server) serviceLog.info({ host: config.host }, 'issued the server certificate');

  const lifecycle = new Lifecycle();
  const store = await openStore({ dataDir: config.dataDir, ...(config.redisUrl ? { redisUrl: config.redisUrl } : {}) });
  lifecycle.onStop(() => store.close());
  try {
    const registry = createInstanceRegistry(store, await bootstrapInstances(store, config, serviceLog), {
      logger: serviceLog,
      ...(instanceRefreshMs ? { refreshMs: instanceRefreshMs } : {}),
    });
    lifecycle.onStop(() => registry.close());

    // The one HTTPS listener serves the service API, the device API and `/$iothub/websocket` (by
    // subprotocol), as Azure's port 443 does. The other listeners report their ports under the
    // names connection.json uses: `mqtt`, `amqp`, `hub:<name>`.
    const tls = { cert: pki.server.certificatePem, key: pki.server.privateKeyPem };
    const devices = createDevicePlane({ config, store, registry, tls, logger });
    lifecycle.add(
      createHttpsListener({
        port: config.ports.https,
        ...tls,
        routes: [createServiceApi({ store, instances: registry.instances, logger }), ...devices.routes],
        upgrade: devices.upgrade,
        logger: logger.child({ category: 'DeviceOperations' }),
      }),
    );
    for (const listener of devices.listeners) lifecycle.add(listener);

    const ports = await lifecycle.start();
    await devices.publishHubHostNames();
    const at = (port: number | undefined): string | null => (port === undefined ? null : `${config.host}:${port}`);
    const endpoints: Endpoints = {
      mqtt: at(ports.mqtt),
      amqp: at(ports.amqp),
      https: `${config.host}:${ports.https}`,
      hubs: Object.entries(ports)
        .filter(([name]) => name.startsWith('hub:'))
        .map(([, port]) => `${config.host}:${port}`),
    };
    const hubConnectionStrings = new Map([...devices.hubs].map(([name, hub]) => [name, hub.connectionString]));
    const connection = connectionInfo(registry.instances(), endpoints, pki.caFile, hubConnectionStrings);
    const connectionFile = writeConnectionFile(config.dataDir, connection);
    serviceLog.info(
      { endpoints, idScope: connection.idScope, instances: connection.instances.map((instance) => instance.name), store: store.kind, connectionFile },
      `OpenDPS ready on https://${endpoints.https}`,
    );
    return {
      config,
      store,
      instances: registry.instances,
      endpoints,
      connection,
      connectionFile,
      caFile: pki.caFile,
      hubs: devices.hubs,
      stop: () => lifecycle.stop(),
    };
  } catch (error) {
    await lifecycle.stop().catch(() => undefined);
    throw error;
  }
}

function stripUndefined(value: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== undefined));
}
