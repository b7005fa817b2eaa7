import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OWNER_POLICY, serviceConnectionString, type ProvisioningInstance } from '@opendps/model';

/**
 * `<data-dir>/connection.json`, written when every listener is up (docs/architecture.md): what tests,
 * the CLI and users read to reach this server. The first instance's fields stay at the top level.
 * It holds the owner keys, so it is private to the user (0600), like the CA key.
 */
export interface ConnectionInfo {
  idScope: string;
  serviceConnectionString: string;
  caFile: string;
  endpoints: Endpoints;
  instances: InstanceConnection[];
}

/** `host:port` with the port really bound; null for a listener this build does not run yet. */
export interface Endpoints {
  mqtt: string | null;
  amqp: string | null;
  https: string;
  /** The built-in hubs' names as devices get them: `host`, or `host:port` off the standard port. */
  hubs: string[];
  /** `wss://host[:port]/$iothub/websocket`: MQTT and AMQP over WebSockets, DPS and the built-in hubs. */
  websocket?: string;
  /** The browser host name on the HTTPS port (no client-certificate request), when there is one. */
  browser?: { https: string; websocket: string };
  /** The metrics port (`/metrics`, `/healthz`, `/readyz`), when one is configured. */
  metrics?: string | null;
  /** The web console: `https://{browser host}:{port}/console/` (docs/console.md). */
  console?: string;
}

export interface InstanceConnection {
  name: string;
  idScope: string;
  serviceConnectionString: string;
  linkedHubs: Array<{ name: string; hostName: string; connectionString?: string; allocationWeight: number }>;
}

export const CONNECTION_FILE = 'connection.json';

export function connectionInfo(
  instances: readonly ProvisioningInstance[],
  endpoints: Endpoints,
  caFile: string,
  /** Built-in hubs' `iothubowner` connection strings by hub name (lower case). */
  hubConnectionStrings: ReadonlyMap<string, string> = new Map(),
): ConnectionInfo {
  const described = instances.map((instance) => describe(instance, hubConnectionStrings));
  const first = described[0];
  if (!first) throw new Error('No provisioning instance to describe.');
  return {
    idScope: first.idScope,
    serviceConnectionString: first.serviceConnectionString,
    caFile,
    endpoints,
    instances: described,
  };
}

function describe(instance: ProvisioningInstance, hubConnectionStrings: ReadonlyMap<string, string>): InstanceConnection {
  // The owner policy when the instance has one (the default); else its first policy.
  const policy = instance.policies.find((candidate) => candidate.keyName === OWNER_POLICY) ?? instance.policies[0];
  return {
    name: instance.name,
    idScope: instance.idScope,
    serviceConnectionString: policy ? serviceConnectionString(instance, policy.keyName) : '',
    linkedHubs: instance.linkedHubs.map((hub) => {
      const connectionString = hub.connectionString ?? hubConnectionStrings.get(hub.name.toLowerCase());
      return { name: hub.name, hostName: hub.hostName, ...(connectionString ? { connectionString } : {}), allocationWeight: hub.allocationWeight };
    }),
  };
}

/** Written to a temporary name and renamed, so a reader never sees half a file. */
export function writeConnectionFile(dataDir: string, info: ConnectionInfo): string {
  const file = join(dataDir, CONNECTION_FILE);
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
  renameSync(temporary, file);
  return file;
}
