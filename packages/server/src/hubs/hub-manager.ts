import { rootCertificates } from 'node:tls';
import { AzureIotHubConnector, BuiltInHub, type HubConnector, type HubEventBus } from '@opendps/hub';
import { Errors, type HttpTimeouts, type LinkedHub, type Logger, type ProvisioningInstance } from '@opendps/model';
import type { HubDirectory } from '@opendps/registration';
import type { Store } from '@opendps/store';
import { instanceCollection } from '../instances';

export interface HubManagerOptions {
  /** `--host`: built-in hubs are `host:port`. */
  host: string;
  tls: { cert: string; key: string };
  /** The address built-in hubs bind (`--bind`; default all interfaces). */
  bind?: string;
  store: Store;
  logger: Logger;
  /** Extra CA (PEM) trusted by hub connectors on top of the system CAs: the development CA. */
  ca?: string;
  /** Deadlines for slow clients of the built-in hubs' REST API. */
  restTimeouts?: HttpTimeouts;
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

  /** `host:port` of every running built-in hub (connection.json `endpoints.hubs`). */
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
    this.options.tls = tls;
    for (const hub of this.builtIn.values()) hub.setTls(tls);
  }

  /** Stops every built-in hub and closes every connector. Idempotent; later syncs do nothing. */
  stop(): Promise<void> {
    this.stopped = true;
    const run = this.queue.then(() => this.reconcile([]));
    this.queue = run.catch(() => undefined);
    return run.then(() => undefined);
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
      if (wantedBuiltIn.has(key)) continue;
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
      const hub = new BuiltInHub({
        name: linked.name,
        host: this.options.host,
        port: linked.builtin.port,
        tls: this.options.tls,
        ...(this.options.bind ? { listenAddress: this.options.bind } : {}),
        store: this.options.store,
        logger: this.options.logger.child({ hub: linked.name }),
        ...(this.options.restTimeouts ? { restTimeouts: this.options.restTimeouts } : {}),
        ...(this.options.events ? { events: this.options.events } : {}),
      });
      try {
        await hub.start();
        this.builtIn.set(key, hub);
        result.started.push(linked.name);
      } catch (error) {
        await hub.stop().catch(() => undefined);
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
