import { rootCertificates, type TlsOptions } from 'node:tls';
import { AzureIotHubConnector, BuiltInHub, type HubConnector, type HubEventBus } from '@opendps/hub';
import { Errors, type HttpTimeouts, type LinkedHub, type Logger, type ProvisioningInstance } from '@opendps/model';
import { ConnectionLimits, type ConnectionLimitsOptions } from '@opendps/protocol-base';
import type { HubDirectory } from '@opendps/registration';
import type { Store } from '@opendps/store';
import { instanceCollection } from '../instances';

export interface HubManagerOptions {
  /** `--host`: the host of built-in hubs that name none of their own (docs/architecture.md "Hub addresses"). */
  host: string;
  /**
   * The ports of the device listeners (MQTT, HTTPS) once they listen: hubs without a port of their
   * own are served there and named after them. Undefined before the listeners started.
   */
  devicePorts?: () => { mqtt: number; https: number } | undefined;
  /** The hubs' TLS (a hub on its own port uses it for its listener; `SNICallback` as on the device listeners). */
  tls: { cert: string; key: string } & Pick<TlsOptions, 'SNICallback'>;
  /** The address built-in hubs bind (`--bind`; default all interfaces). */
  bind?: string;
  store: Store;
  logger: Logger;
  /** Extra CA (PEM) trusted by hub connectors on top of the system CAs: the development CA. */
  ca?: string;
  /** Deadlines for slow clients of the built-in hubs' REST API. */
  restTimeouts?: HttpTimeouts;
  /** Open connections per source address and in all, on each built-in hub's listener. */
  connectionLimits?: ConnectionLimitsOptions;
  /** Shares the built-in hubs' twin notifications with other nodes and workers. */
  events?: HubEventBus;
}

export interface SyncResult {
  started: string[];
  stopped: string[];
  /** Hubs that could not be started (port in use, bad connection string), with the reason. */
  failed: Array<{ name: string; kind: 'builtin' | 'connectionString'; error: Error }>;
}

/**
 * The hubs this node serves and reaches: one `BuiltInHub` per built-in hub name linked by any
 * instance (instances linking the same name share it), and one `AzureIotHubConnector` per distinct
 * connection string. `sync` reconciles them with an instances snapshot; calls are serialised.
 */
export class HubManager implements HubDirectory {
  private readonly builtIn = new Map<string, BuiltInHub>();
  private readonly remote = new Map<string, AzureIotHubConnector>();
  private queue: Promise<unknown> = Promise.resolve();
  private stopped = false;
  private readonly ca: Array<string> | undefined;

  constructor(private readonly options: HubManagerOptions) {
    // `ca` replaces Node's trust store, so the system roots are kept next to the development CA.
    this.ca = options.ca ? [...rootCertificates, options.ca] : undefined;
  }

  /** Running built-in hubs by name (lower case). */
  get hubs(): ReadonlyMap<string, BuiltInHub> {
    return this.builtIn;
  }

  /** HubDirectory: the connector of a linked hub (its connection string first, else its built-in hub). */
  connector(hub: LinkedHub): HubConnector {
    if (hub.connectionString) {
      const connector = this.remote.get(hub.connectionString);
      if (connector) return connector;
    } else {
      const builtIn = this.builtIn.get(hub.name.toLowerCase());
      if (builtIn) return builtIn;
    }
    throw Errors.hubUnavailable(`The linked hub '${hub.name}' has no connector on this node.`);
  }

  /** `iothubowner` connection strings of the running built-in hubs, by name (lower case). */
  connectionStrings(): Map<string, string> {
    return new Map([...this.builtIn].map(([name, hub]) => [name, hub.connectionString]));
  }

  /**
   * The running hub served on the device listeners under this host name (a port, if any, is
   * ignored: clients put the listener's port in it or not); host names compare case-insensitively.
   */
  onDeviceListeners(hostName: string): BuiltInHub | undefined {
    const host = bareHost(hostName).toLowerCase();
    for (const hub of this.builtIn.values()) if (hub.onDeviceListeners && hub.host.toLowerCase() === host) return hub;
    return undefined;
  }

  /** A running built-in hub with this host name (a port, if any, is ignored), wherever it is served. */
  withHost(hostName: string): BuiltInHub | undefined {
    const host = bareHost(hostName).toLowerCase();
    for (const hub of this.builtIn.values()) if (hub.host.toLowerCase() === host) return hub;
    return undefined;
  }

  /** The host name of every running built-in hub (connection.json `endpoints.hubs`). */
  hostNames(): string[] {
    return [...this.builtIn.values()].map((hub) => hub.hostName);
  }

  /**
   * Starts what the instances link and this node does not run yet (a built-in hub listens before
   * this resolves; port 0 takes a free one), stops and closes what no instance links any more.
   */
  sync(instances: readonly ProvisioningInstance[] | (() => readonly ProvisioningInstance[])): Promise<SyncResult> {
    // A getter is read when this sync's turn comes, so a sync queued behind another never applies
    // an older snapshot over a newer one.
    const run = this.queue.then(() => this.reconcile(typeof instances === 'function' ? instances() : instances));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Stores each running built-in hub's real `host:port` as `hostName` on the instances that link it
   * (compare-and-set: another node or the admin API may write the instance too).
   */
  async publishHostNames(instanceNames: readonly string[]): Promise<void> {
    const collection = instanceCollection(this.options.store);
    for (const name of instanceNames) {
      for (let attempt = 0; attempt < 5; attempt++) {
        const stored = await collection.get(name);
        if (!stored) break;
        const linkedHubs = stored.value.linkedHubs.map((hub) => {
          const running = hub.builtin ? this.builtIn.get(hub.name.toLowerCase()) : undefined;
          return running && running.hostName !== hub.hostName ? { ...hub, hostName: running.hostName } : hub;
        });
        if (linkedHubs.every((hub, i) => hub === stored.value.linkedHubs[i])) break;
        const written = await collection.put(name, { ...stored.value, linkedHubs }, { ifMatch: stored.etag }).then(
          () => true,
          (error: unknown) => {
            if ((error as { status?: number }).status !== 412) throw error;
            return false;
          },
        );
        if (written) break;
      }
    }
  }

  /** A reloaded server certificate: running and later built-in hubs use it for new connections. */
  setTls(tls: { cert: string; key: string }): void {
    // The SNI callback (certificates for hub host names) outlives a reload of the default pair.
    this.options.tls = { ...(this.options.tls.SNICallback ? { SNICallback: this.options.tls.SNICallback } : {}), ...tls };
    for (const hub of this.builtIn.values()) hub.setTls(tls);
  }

  /** Stops every built-in hub and closes every connector. Idempotent; later syncs do nothing. */
  stop(): Promise<void> {
    this.stopped = true;
    const run = this.queue.then(() => this.reconcile([]));
    this.queue = run.catch(() => undefined);
    return run.then(() => undefined);
  }

  private async startHub(hub: BuiltInHub): Promise<BuiltInHub> {
    try {
      await hub.start();
      return hub;
    } catch (error) {
      await hub.stop().catch(() => undefined);
      throw error;
    }
  }

  /** Whether a running hub still has the address the link asks for. */
  private servesAt(hub: BuiltInHub, linked: LinkedHub): boolean {
    const builtin = linked.builtin;
    if (!builtin) return false;
    if (hub.host.toLowerCase() !== (builtin.hostName ?? this.options.host).toLowerCase()) return false;
    if (builtin.port === undefined) return hub.onDeviceListeners;
    return !hub.onDeviceListeners && (builtin.port === 0 || builtin.port === hub.port);
  }

  private async reconcile(instances: readonly ProvisioningInstance[]): Promise<SyncResult> {
    const result: SyncResult = { started: [], stopped: [], failed: [] };
    const wantedBuiltIn = new Map<string, LinkedHub>();
    const wantedRemote = new Map<string, LinkedHub>();
    if (!this.stopped) {
      for (const hub of instances.flatMap((instance) => instance.linkedHubs)) {
        if (hub.connectionString) {
          if (!wantedRemote.has(hub.connectionString)) wantedRemote.set(hub.connectionString, hub);
        } else if (hub.builtin && !wantedBuiltIn.has(hub.name.toLowerCase())) {
          wantedBuiltIn.set(hub.name.toLowerCase(), hub);
        }
      }
    }

    for (const [key, hub] of [...this.builtIn]) {
      // A hub whose address changed (host name, or own port vs the device listeners) starts again.
      const wanted = wantedBuiltIn.get(key);
      if (wanted && this.servesAt(hub, wanted)) continue;
      this.builtIn.delete(key);
      await hub.stop().catch((error: Error) => this.options.logger.warn({ hub: hub.name, err: error.message }, 'could not stop a built-in hub'));
      result.stopped.push(hub.name);
    }
    for (const [connectionString, connector] of [...this.remote]) {
      if (wantedRemote.has(connectionString)) continue;
      this.remote.delete(connectionString);
      connector.close();
      result.stopped.push(connector.hostName);
    }

    for (const [key, linked] of wantedBuiltIn) {
      if (this.builtIn.has(key) || !linked.builtin) continue;
      const host = linked.builtin.hostName ?? this.options.host;
      const port = linked.builtin.port;
      const devicePorts = port === undefined ? this.options.devicePorts?.() : undefined;
      if (port === undefined && (!devicePorts || this.onDeviceListeners(host))) {
        const reason = devicePorts ? `the host name '${host}' is taken by another hub` : 'the device listeners are not running';
        this.options.logger.error({ hub: linked.name, host }, `could not start a built-in hub: ${reason}`);
        result.failed.push({ name: linked.name, kind: 'builtin', error: Errors.conflict(`Hub '${linked.name}': ${reason}.`) });
        continue;
      }
      const logger = this.options.logger.child({ hub: linked.name });
      const create = (ownPort: number | undefined): BuiltInHub =>
        new BuiltInHub({
          name: linked.name,
          host,
          ...(ownPort !== undefined ? { port: ownPort } : devicePorts ? { sharedPorts: devicePorts } : {}),
          tls: this.options.tls,
          store: this.options.store,
          ...(this.options.bind ? { listenAddress: this.options.bind } : {}),
          logger,
          ...(this.options.restTimeouts ? { restTimeouts: this.options.restTimeouts } : {}),
          ...(this.options.events ? { events: this.options.events } : {}),
          connectionLimits: new ConnectionLimits({ ...this.options.connectionLimits, logger, name: `hub ${linked.name}` }),
        });
      try {
        // A hub on "any free port" takes the port it was published with again, so its address
        // survives a restart; when that port is taken, another free one.
        const remembered = port === 0 ? portIn(linked.hostName) : undefined;
        const hub = remembered !== undefined ? await this.startHub(create(remembered)).catch(() => undefined) : undefined;
        this.builtIn.set(key, hub ?? (await this.startHub(create(port))));
        result.started.push(linked.name);
      } catch (error) {
        this.options.logger.error({ hub: linked.name, err: (error as Error).message }, 'could not start a built-in hub');
        result.failed.push({ name: linked.name, kind: 'builtin', error: error as Error });
      }
    }
    for (const [connectionString, linked] of wantedRemote) {
      if (this.remote.has(connectionString)) continue;
      try {
        const connector = new AzureIotHubConnector(connectionString, {
          ...(this.ca ? { ca: this.ca } : {}),
          logger: this.options.logger,
        });
        this.remote.set(connectionString, connector);
        result.started.push(linked.name);
      } catch (error) {
        this.options.logger.error({ hub: linked.name, err: (error as Error).message }, 'could not create a hub connector');
        result.failed.push({ name: linked.name, kind: 'connectionString', error: error as Error });
      }
    }
    return result;
  }
}

/** `host` of `host`, `host:port` or `[v6]:port`. */
export function bareHost(hostName: string): string {
  const trimmed = hostName.trim();
  if (trimmed.startsWith('[')) return trimmed.slice(0, trimmed.indexOf(']') + 1) || trimmed;
  const colon = trimmed.indexOf(':');
  return colon === -1 ? trimmed : trimmed.slice(0, colon);
}

/** The port of `host:port`, if it has one. */
function portIn(hostName: string): number | undefined {
  const match = /:(\d{1,5})$/.exec(hostName);
  const port = match ? Number(match[1]) : NaN;
  return port > 0 && port < 65536 ? port : undefined;
}
