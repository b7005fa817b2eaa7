import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseConnectionString } from '@opendps/model';
import { DEFAULT_DATA_DIR } from '../config';
import type { ConnectionInfo } from '../connection-file';
import { stringValue, type OptionSpecs, type Values } from './command';
import { UsageError } from './errors';
import type { CliIo } from './io';
import { splitEndpoint, type ServiceTarget } from './target';

/**
 * Where the control-plane commands (`instance`, `hub`) send their admin API calls: the deployment
 * admin key (`adminConnectionString` of connection.json, or `--admin-connection-string`), the HTTPS
 * endpoint and the CA of a local server found through `--data-dir`.
 */
export const ADMIN_TARGET_OPTIONS: OptionSpecs = {
  'data-dir': { type: 'string', value: 'PATH', help: 'find connection.json of a local server here (default ./.opendps) [OPENDPS_DATA_DIR]' },
  'admin-connection-string': {
    type: 'string',
    value: 'CS',
    help: 'admin connection string, or an instance service connection string with ServiceConfig for hub commands (default: adminConnectionString of connection.json) [OPENDPS_ADMIN_CONNECTION_STRING]',
  },
  'ca-file': { type: 'string', value: 'FILE', help: 'CA certificate to trust (default: caFile of connection.json)' },
  endpoint: { type: 'string', value: 'HOST:PORT', help: 'HTTPS endpoint (default: connection.json, else HostName:443)' },
};

export interface AdminTarget extends ServiceTarget {
  /** connection.json, when there is one: the default instance is its first. */
  connection?: ConnectionInfo;
}

export function resolveAdminTarget(values: Values, io: CliIo): AdminTarget {
  const dataDir = resolve(io.cwd, stringValue(values, 'data-dir') ?? io.env.OPENDPS_DATA_DIR ?? DEFAULT_DATA_DIR);
  const explicit = stringValue(values, 'admin-connection-string') ?? io.env.OPENDPS_ADMIN_CONNECTION_STRING;
  const connection = readConnectionFile(dataDir);
  const connectionString = explicit ?? connection?.adminConnectionString;
  if (!connectionString) {
    throw new UsageError(
      connection
        ? `${join(dataDir, 'connection.json')} has no adminConnectionString (a server older than the admin API?); pass --admin-connection-string`
        : `No admin connection string: pass --admin-connection-string, or --data-dir of a running server (${join(dataDir, 'connection.json')} does not exist)`,
    );
  }
  const fields = parseConnectionString(connectionString);
  if (!fields.HostName || !fields.SharedAccessKeyName || !fields.SharedAccessKey) {
    throw new UsageError("The admin connection string must be 'HostName=…;SharedAccessKeyName=…;SharedAccessKey=…'");
  }
  const endpoint = stringValue(values, 'endpoint') ?? connection?.endpoints.https ?? `${fields.HostName}:443`;
  const { host, port } = splitEndpoint(endpoint);
  const caFile = stringValue(values, 'ca-file') ?? connection?.caFile;
  const target: AdminTarget = { hostName: fields.HostName, keyName: fields.SharedAccessKeyName, key: fields.SharedAccessKey, host, port };
  if (connection) target.connection = connection;
  if (caFile) {
    const file = resolve(io.cwd, caFile);
    if (!existsSync(file)) throw new UsageError(`The CA file ${file} does not exist`);
    target.ca = readFileSync(file, 'utf8');
  }
  return target;
}

function readConnectionFile(dataDir: string): (ConnectionInfo & { adminConnectionString?: string }) | undefined {
  const file = join(dataDir, 'connection.json');
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as ConnectionInfo & { adminConnectionString?: string };
  } catch {
    throw new UsageError(`${file} is not valid JSON`);
  }
}
