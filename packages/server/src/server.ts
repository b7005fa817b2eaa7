import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { distDir as consoleDistDir } from '@opendps/console';
import type { BuiltInHub } from '@opendps/hub';
import type { Logger, ProvisioningInstance } from '@opendps/model';
import { createServiceApi } from '@opendps/service-api';
import { openStore, type Store } from '@opendps/store';
import { adminConnectionString, createAdminApi, ensureAdminPolicy } from './admin';
import { browserHostOf, validateConfigFile, webhookPolicy, withDefaults, type ConfigLayer, type Ports, type ServerConfig } from './config';
import { CONNECTION_FILE, connectionInfo, writeConnectionFile, type ConnectionInfo, type Endpoints } from './connection-file';
import { connectionLimitsOf, createDevicePlane } from './device-plane';
import { openHubEvents } from './hub-events';
import { consoleRoute } from './console';
import { HubManager, hubConnectRouter, hubRestRoute } from './hubs';
import { createHttpsListener } from './https';
import { bootstrapInstances, createInstanceRegistry } from './instances';
import { Lifecycle } from './lifecycle';
import { createLogger } from './logger';
import { createMetricsListener, createReadiness, healthRoute, type Readiness } from './observability/health';
import { ServerMetrics } from './observability/metrics';
import { metricsSnapshotRoute } from './observability/metrics-snapshot';
import { ensureSharedDevPki } from './pki/dev-pki';
import { withBrowserHost } from './pki/browser-tls';
import { hubSniCallback } from './pki/hub-certificates';
import { readTlsFiles, ServerTls } from './pki/server-tls';
import { storeSharedPki } from './pki/shared-pki';
import type { Clock, ServerTimeouts } from './timing';

/** What createServer accepts: a resolved config, or just the parts that differ from the defaults. */
export interface ServerOptions extends Omit<ConfigLayer, 'ports' | 'redisUrl'> {
  dataDir: string;
  ports?: Partial<Ports>;
  redisUrl?: string;
  /** Default: pino JSON on stdout. */
  logger?: Logger;
  /** How often the instance snapshot is re-read from the store (other nodes may change it). */
  instanceRefreshMs?: number;
  /**
   * What leases, operation and TPM challenge lifetimes, SAS expiry, quota windows and the embedded
   * store's TTLs are compared with (default Date.now). A Redis store keeps its server's clock.
   */
  clock?: Clock;
  /** Durations the server waits for (timing.ts); each defaults to its production value. */
  timeouts?: ServerTimeouts;
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
  /** Prometheus metrics of this server (served on the metrics port when one is configured). */
  readonly metrics: ServerMetrics;
  /** What `/readyz` answers; unready while draining (`drain()`, or `setDraining(true)`). */
  readonly readiness: Readiness;
  setDraining(draining: boolean): void;
  /** True from the start of a drain: readiness reports unready. */
  readonly draining: boolean;
  /**
   * A graceful stop within `config.drainTimeoutMs`: listeners stop accepting, in-flight
   * registrations are answered and recorded (or left leased in the store for another node's poll),
   * connections are closed cleanly, then everything stops. Idempotent.
   */
  drain(): Promise<DrainReport>;
  /** Re-reads `--tls-cert`/`--tls-key` (SIGHUP); true when a new certificate now serves new connections. */
  reloadTls(): boolean;
  /** Closes the listeners, then the store. Idempotent. */
  stop(): Promise<void>;
}

export interface DrainReport {
  /** Registrations in flight when the drain began, and those not finished when it gave up on them. */
  inFlight: number;
  left: number;
  /** MQTT and AMQP connections open when the drain began. */
  connections: number;
  durationMs: number;
}

/**
 * The composition root: dev PKI, store, instances, then every listener; `connection.json` and the
 * `ready` log line come last, when everything answers. Resolves with the server running.
 */
export async function createServer(options: ServerOptions): Promise<RunningServer> {
  const { logger: givenLogger, instanceRefreshMs, configFile, clock, timeouts = {}, ...layer } = options;
  // Programmatic options get the same checks as a config file.
  validateConfigFile(stripUndefined(layer), 'createServer options');
  const config = withDefaults([layer], process.cwd(), configFile);
  const logger = givenLogger ?? createLogger(config.logLevel ? { level: config.logLevel } : {});
  const serviceLog = logger.child({ category: 'ServiceOperations' });

  // Own certificates are checked before anything listens, so a bad file is a clear start error.
  const ownTls = config.tls ? readTlsFiles(config.tls) : undefined;
  const lifecycle = new Lifecycle();
  const store = await openStore({
    dataDir: config.dataDir,
    ...(config.redisUrl ? { redisUrl: config.redisUrl } : {}),
    ...(clock ? { now: () => clock.now() } : {}),
  });
  lifecycle.onStop(() => store.close());
  const metrics = new ServerMetrics();
  const readiness = createReadiness({ store, ...(timeouts.readinessStoreTimeoutMs !== undefined ? { storeTimeoutMs: timeouts.readinessStoreTimeoutMs } : {}) });
  try {
    const pki = await ensureSharedDevPki(config.dataDir, config.host, storeSharedPki(store), config.serverKeyType);
    if (pki.created.ca) serviceLog.info({ caFile: pki.caFile }, 'created the development root CA');
    if (pki.created.server) serviceLog.info({ host: config.host }, 'issued the server certificate');
    if (pki.foreignServer && !ownTls) serviceLog.info({ file: join(config.dataDir, 'server.pem') }, 'serving the server certificate found in the data directory (not issued by the development CA)');
    const serverTls = new ServerTls(ownTls ?? { cert: pki.server.certificatePem, key: pki.server.privateKeyPem }, config.tls, serviceLog);
    serverTls.watch(timeouts.tlsPollMs);
    lifecycle.onStop(() => serverTls.close());

    const registry = createInstanceRegistry(store, await bootstrapInstances(store, config, serviceLog), {
      logger: serviceLog,
      ...(instanceRefreshMs ? { refreshMs: instanceRefreshMs } : {}),
    });
    lifecycle.onStop(() => registry.close());

    const adminPolicy = await ensureAdminPolicy(store);
    const caPem = readFileSync(pki.caFile, 'utf8');
    const hubEvents = await openHubEvents({ ...(config.redisUrl ? { redisUrl: config.redisUrl } : {}), logger: serviceLog });
    if (hubEvents) lifecycle.onStop(() => hubEvents.close());
    const tls = serverTls.current;
    const connectionLimits = connectionLimitsOf(config);
    // Every listener also answers to the host names of the built-in hubs, and to the browser host
    // name, whose handshakes ask for no client certificate (pki/browser-tls.ts).
    const browserHost = browserHostOf(config);
    const certifiedName = (name: string): boolean => name === browserHost || hubManager.withHost(name) !== undefined;
    const deviceTls = {
      ...tls,
      SNICallback: withBrowserHost(hubSniCallback({ ca: pki.ca, server: pki.server, isHubHost: certifiedName }), browserHost),
    };
    let ports: Record<string, number> = {};
    const hubManager = new HubManager({
      ...(hubEvents ? { events: hubEvents } : {}),
      host: config.host,
      // Hubs without a port of their own are served on the device listeners and named after their ports.
      devicePorts: () => (ports.https === undefined ? undefined : { mqtt: ports.mqtt ?? ports.https, https: ports.https }),
      tls: deviceTls,
      bind: config.bind,
      store,
      logger: logger.child({ category: 'DeviceOperations' }),
      ca: caPem,
      ...(config.http ? { restTimeouts: config.http } : {}),
      connectionLimits,
    });
    lifecycle.onStop(() => hubManager.stop());

    // The one HTTPS listener serves the admin API, the service API, the device API and
    // `/$iothub/websocket` (by subprotocol), as Azure's port 443 does. The other listeners report
    // their ports under the names connection.json uses: `mqtt`, `amqp`.
    const devices = createDevicePlane({
      config,
      store,
      registry,
      tls: deviceTls,
      logger,
      hubs: hubManager,
      hubConnections: hubConnectRouter(hubManager),
      timeouts,
      metrics,
      ...(clock ? { clock } : {}),
    });
    lifecycle.onStop(() => devices.close());
    let endpoints: Endpoints | undefined;
    let connection: (ConnectionInfo & { adminConnectionString: string }) | undefined;
    let written = '';
    const adminString = adminConnectionString(config.host, adminPolicy);
    /** Rewrites connection.json when what it says changed (instances, hubs). */
    const publishConnection = (): void => {
      const at = (port: number | undefined): string | null => (port === undefined ? null : `${config.host}:${port}`);
      endpoints = { mqtt: at(ports.mqtt), amqp: at(ports.amqp), https: `${config.host}:${ports.https}`, hubs: hubManager.hostNames() };
      endpoints.websocket = webSocketUrl(config.host, ports.https);
      if (browserHost) endpoints.browser = { https: `${browserHost}:${ports.https}`, websocket: webSocketUrl(browserHost, ports.https) };
      endpoints.console = `https://${endpoints.browser?.https ?? endpoints.https}/console/`;
      if (config.metrics) endpoints.metrics = ports.metrics === undefined ? null : `${metricsHost(config.metrics.bind, config.host)}:${ports.metrics}`;
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
    const httpsListener = createHttpsListener({
      port: config.ports.https,
      bindAddress: config.bind,
      ...deviceTls,
      routes: [
        healthRoute(readiness),
        hubRestRoute(hubManager),
        consoleRoute({ distDir: consoleDistDir }),
        metricsSnapshotRoute({ metrics, host: config.host, adminPolicy, registry }),
        createAdminApi({ store, host: config.host, adminPolicy, registry, hubs: hubManager, apply, ca: caPem, logger }),
        createServiceApi({ store, instances: registry.instances, logger, webhooks: webhookPolicy(config) }),
        ...devices.routes,
      ],
      upgrade: devices.upgrade,
      ...config.http,
      logger: logger.child({ category: 'DeviceOperations' }),
      connectionLimits,
    });
    metrics.trackServer('https', httpsListener.server);
    lifecycle.add(httpsListener);
    serverTls.onChange((pair) => {
      httpsListener.setTls(pair);
      devices.setTls(pair);
      hubManager.setTls(pair);
    });
    for (const listener of devices.listeners) lifecycle.add(listener);
    if (config.metrics) lifecycle.add(createMetricsListener({ port: config.metrics.port, bind: config.metrics.bind ?? '127.0.0.1', metrics, readiness }));

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
    }, timeouts.hubSyncMs ?? instanceRefreshMs ?? 5000);
    follow.unref();
    lifecycle.onStop(() => clearInterval(follow));

    const current = (): ConnectionInfo & { adminConnectionString: string } => {
      if (!connection) throw new Error('connection.json has not been written');
      return connection;
    };
    readiness.setListening(true);
    serviceLog.info(
      {
        endpoints,
        idScope: current().idScope,
        instances: current().instances.map((instance) => instance.name),
        store: store.kind,
        connectionFile: join(config.dataDir, CONNECTION_FILE),
      },
      `OpenDPS ready on https://${endpoints?.https ?? ''}; console at ${endpoints?.console ?? ''}`,
    );
    let draining: Promise<DrainReport> | undefined;
    const drain = async (): Promise<DrainReport> => {
      const started = performance.now();
      const begun = { inFlight: devices.inFlight, connections: devices.connections };
      serviceLog.info({ ...begun, timeoutMs: config.drainTimeoutMs }, 'draining: no new connections; finishing in-flight registrations');
      clearInterval(follow);
      readiness.setDraining(true);
      httpsListener.stopAccepting();
      // Most of the bound goes to the registrations; the rest to closing connections and the store.
      await devices.drain(Math.floor(config.drainTimeoutMs * 0.7), Math.min(1_000, Math.floor(config.drainTimeoutMs * 0.1)));
      const left = devices.inFlight;
      await lifecycle.stop();
      const report = { ...begun, left, durationMs: Math.round(performance.now() - started) };
      serviceLog.info(report, left ? 'drained; unfinished registrations stay leased in the store for another node' : 'drained');
      return report;
    };
    return {
      config,
      store,
      get draining() {
        return draining !== undefined;
      },
      drain: () => (draining ??= drain()),
      reloadTls: () => serverTls.reload(),
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
      metrics,
      readiness,
      setDraining: (draining) => readiness.setDraining(draining),
      stop: () => {
        readiness.setListening(false);
        return lifecycle.stop();
      },
    };
  } catch (error) {
    await lifecycle.stop().catch(() => undefined);
    throw error;
  }
}

/** The URL every WebSocket transport dials (MQTT and AMQP alike), with the port as bound. */
function webSocketUrl(host: string, port: number | undefined): string {
  return `wss://${host}${port === 443 ? '' : `:${port}`}/$iothub/websocket`;
}

/** Where a scraper reaches the metrics port: the bound address, or `--host` when every interface is bound. */
function metricsHost(bind: string | undefined, host: string): string {
  if (bind === '0.0.0.0' || bind === '::') return host;
  return bind?.includes(':') ? `[${bind}]` : (bind ?? '127.0.0.1');
}

function stripUndefined(value: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== undefined));
}
