import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseConnectionString } from '@opendps/model';
import { DEFAULT_DATA_DIR } from '../config';
import type { ConnectionInfo } from '../connection-file';
import { stringValue, type OptionSpecs, type Values } from './command';
import { UsageError } from './errors';
import type { CliIo } from './io';

/**
 * Which OpenDPS service API a command talks to, and with which policy key. Explicit flags win;
 * anything missing comes from `<data-dir>/connection.json` of a local server. So the commands work
 * against a remote instance with only `--connection-string` (+ `--ca-file`, `--endpoint`).
 */
export interface ServiceTarget {
  /** The connection string's HostName: the SAS token's resource. */
  hostName: string;
  keyName: string;
  key: string;
  /** Where to connect. */
  host: string;
  port: number;
  /** PEM of the CA to trust; system CAs when absent. */
  ca?: string;
}

export const TARGET_OPTIONS: OptionSpecs = {
  'data-dir': { type: 'string', value: 'PATH', help: 'find connection.json of a local server here (default ./.opendps) [OPENDPS_DATA_DIR]' },
  'connection-string': { type: 'string', value: 'CS', help: 'service connection string (default: from connection.json) [OPENDPS_CONNECTION_STRING]' },
  'ca-file': { type: 'string', value: 'FILE', help: 'CA certificate to trust (default: caFile of connection.json)' },
  endpoint: { type: 'string', value: 'HOST:PORT', help: 'HTTPS endpoint (default: connection.json, else HostName:443)' },
  instance: { type: 'string', value: 'NAME', help: 'which instance of connection.json (default: the first)' },
};

export function resolveTarget(values: Values, io: CliIo): ServiceTarget {
  const dataDir = resolve(io.cwd, stringValue(values, 'data-dir') ?? io.env.OPENDPS_DATA_DIR ?? DEFAULT_DATA_DIR);
  const explicit = stringValue(values, 'connection-string') ?? io.env.OPENDPS_CONNECTION_STRING;
  const connection = readConnectionFile(dataDir);
  if (!explicit && !connection) {
    throw new UsageError(
      `No service connection string: pass --connection-string, or --data-dir of a running server (${join(dataDir, 'connection.json')} does not exist)`,
    );
  }

  const instanceName = stringValue(values, 'instance');
  let connectionString = explicit;
  if (!connectionString && connection) {
    const instance = instanceName
      ? connection.instances.find((candidate) => candidate.name.toLowerCase() === instanceName.toLowerCase())
      : undefined;
    if (instanceName && !instance) throw new UsageError(`No instance '${instanceName}' in connection.json`);
    connectionString = instance?.serviceConnectionString ?? connection.serviceConnectionString;
  }
  const fields = parseConnectionString(connectionString ?? '');
  if (!fields.HostName || !fields.SharedAccessKeyName || !fields.SharedAccessKey) {
    throw new UsageError("The connection string must be 'HostName=…;SharedAccessKeyName=…;SharedAccessKey=…'");
  }

  const endpoint = stringValue(values, 'endpoint') ?? (explicit ? undefined : connection?.endpoints.https) ?? `${fields.HostName}:443`;
  const { host, port } = splitEndpoint(endpoint);
  const caFile = stringValue(values, 'ca-file') ?? (explicit ? undefined : connection?.caFile);
  const target: ServiceTarget = { hostName: fields.HostName, keyName: fields.SharedAccessKeyName, key: fields.SharedAccessKey, host, port };
  if (caFile) {
    const file = resolve(io.cwd, caFile);
    if (!existsSync(file)) throw new UsageError(`The CA file ${file} does not exist`);
    target.ca = readFileSync(file, 'utf8');
  }
  return target;
}

function readConnectionFile(dataDir: string): ConnectionInfo | undefined {
  const file = join(dataDir, 'connection.json');
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as ConnectionInfo;
  } catch {
    throw new UsageError(`${file} is not valid JSON`);
  }
}

export function splitEndpoint(endpoint: string): { host: string; port: number } {
  // `[::1]:8443`, `host:8443`; a bare host means 443.
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(endpoint);
  const port = match?.[3] === undefined ? 443 : Number(match[3]);
  const host = match?.[1] ?? match?.[2];
  if (!host || port < 1 || port > 65535) throw new UsageError(`--endpoint must be HOST:PORT; got '${endpoint}'`);
  return { host, port };
}
