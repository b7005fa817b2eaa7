import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BuiltInHub } from '@opendps/hub';
import type { Logger, ProvisioningInstance } from '@opendps/model';
import { createServiceApi } from '@opendps/service-api';
import { openStore, type Store } from '@opendps/store';
import { adminConnectionString, createAdminApi, ensureAdminPolicy } from './admin';
import { validateConfigFile, withDefaults, type ConfigLayer, type Ports, type ServerConfig } from './config';
import { CONNECTION_FILE, connectionInfo, writeConnectionFile, type ConnectionInfo, type Endpoints } from './connection-file';
import { createDevicePlane } from './device-plane';
import { HubManager } from './hubs';
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
  /** Current endpoints (`hubs` follows hubs linked and unlinked at run time). */
  readonly endpoints: Endpoints;
  /** What connection.json holds now (rewritten when the admin API changes instances or hubs). */
  readonly connection: ConnectionInfo & { adminConnectionString: string };
  readonly connectionFile: string;
  readonly caFile: string;
  /** The built-in hubs this process serves, by name (lower case): tests read what devices sent them. */
  readonly hubs: ReadonlyMap<string, BuiltInHub>;
  /** Runs the built-in hubs and hub connectors; `sync` follows instance changes. */
  readonly hubManager: HubManager;
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

  const pki = ensureDevPki(config.dataDir, config.host, config.serverKeyType);
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

    const adminPolicy = await ensureAdminPolicy(store);
    const caPem = readFileSync(pki.caFile, 'utf8');
    const tls = { cert: pki.server.certificatePem, key: pki.server.privateKeyPem };
    const hubManager = new HubManager({
      host: config.host,
      tls,
      store,
      logger: logger.child({ category: 'DeviceOperations' }),
      ca: caPem,
      ...(config.http ? { restTimeouts: config.http } : {}),
    });
    lifecycle.onStop(() => hubManager.stop());

    // The one HTTPS listener serves the admin API, the service API, the device API and
    // `/$iothub/websocket` (by subprotocol), as Azure's port 443 does. The other listeners report
    // their ports under the names connection.json uses: `mqtt`, `amqp`.
    const devices = createDevicePlane({ config, store, registry, tls, logger, hubs: hubManager });
    lifecycle.onStop(() => devices.close());
    let ports: Record<string, number> = {};
    let endpoints: Endpoints | undefined;
    let connection: (ConnectionInfo & { adminConnectionString: string }) | undefined;
    let written = '';
    const adminString = adminConnectionString(config.host, adminPolicy);
    /** Rewrites connection.json when what it says changed (instances, hubs). */
    const publishConnection = (): void => {
      const at = (port: number | undefined): string | null => (port === undefined ? null : `${config.host}:${port}`);
      endpoints = { mqtt: at(ports.mqtt), amqp: at(ports.amqp), https: `${config.host}:${ports.https}`, hubs: hubManager.hostNames() };
      const next = { ...connectionInfo(registry.instances(), endpoints, pki.caFile, hubManager.connectionStrings()), adminConnectionString: adminString };
      const text = JSON.stringify(next);
      if (text === written) return;
      writeConnectionFile(config.dataDir, next);
      written = text;
      connection = next;
    };
    /** After an instance changed (admin API, another node): hubs follow, host names are stored, connection.json is rewritten. */
    const apply = async () => {
      await registry.refresh();
      const result = await hubManager.sync(registry.instances);
      await hubManager.publishHostNames(registry.instances().map((instance) => instance.name));
      await registry.refresh();
      publishConnection();
      return result;
    };
    lifecycle.add(
      createHttpsListener({
        port: config.ports.https,
        ...tls,
        routes: [
          createAdminApi({ store, host: config.host, adminPolicy, registry, hubs: hubManager, apply, ca: caPem, logger }),
          createServiceApi({ store, instances: registry.instances, logger }),
          ...devices.routes,
        ],
        upgrade: devices.upgrade,
        ...config.http,
        logger: logger.child({ category: 'DeviceOperations' }),
      }),
    );
    for (const listener of devices.listeners) lifecycle.add(listener);

    ports = await lifecycle.start();
    // The hubs start after the front-ends, as before; a built-in hub that cannot listen fails the
    // start (a bad hub connection string only fails the registrations sent to that hub).
    const started = await hubManager.sync(registry.instances);
    const failed = started.failed.find((failure) => failure.kind === 'builtin');
    if (failed) throw failed.error;
    await hubManager.publishHostNames(registry.instances().map((instance) => instance.name));
    await registry.refresh();
    publishConnection();
    // Other nodes may link or unlink hubs: follow the refreshed snapshot (host names are published
    // by the node that linked a hub, so nodes do not overwrite each other's).
    const follow = setInterval(() => {
      hubManager
        .sync(registry.instances)
        .then(() => publishConnection())
        .catch((error: Error) => serviceLog.warn({ err: error.message }, 'hub sync failed'));
    }, instanceRefreshMs ?? 5000);
    follow.unref();
    lifecycle.onStop(() => clearInterval(follow));

    const current = (): ConnectionInfo & { adminConnectionString: string } => {
      if (!connection) throw new Error('connection.json has not been written');
      return connection;
    };
    serviceLog.info(
      {
        endpoints,
        idScope: current().idScope,
        instances: current().instances.map((instance) => instance.name),
        store: store.kind,
        connectionFile: join(config.dataDir, CONNECTION_FILE),
      },
      `OpenDPS ready on https://${endpoints?.https ?? ''}`,
    );
    return {
      config,
      store,
      instances: registry.instances,
      get endpoints() {
        return current().endpoints;
      },
      get connection() {
        return current();
      },
      connectionFile: join(config.dataDir, CONNECTION_FILE),
      caFile: pki.caFile,
      hubs: hubManager.hubs,
      hubManager,
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
