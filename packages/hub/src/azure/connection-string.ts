import { assertSymmetricKey, Errors } from '@opendps/model';

/** A hub connection string: `HostName=…;SharedAccessKeyName=…;SharedAccessKey=…`. */
export interface HubConnectionString {
  /** As written, `host` or `host:port` (what devices are told as `assignedHub`). */
  hostName: string;
  /** The host part alone, for DNS and TLS server-name checks. */
  host: string;
  port: number | undefined;
  keyName: string;
  key: string;
}

/**
 * Parses a hub connection string. Azure's have no port; ours may (`HostName=localhost:8884` for a
 * built-in hub), which azure-iothub cannot parse but this connector can. Field names are
 * case-insensitive; a value may contain `=` (base64 keys end with it).
 */
export function parseHubConnectionString(connectionString: string): HubConnectionString {
  const fields = new Map<string, string>();
  for (const part of connectionString.split(';')) {
    const at = part.indexOf('=');
    if (at > 0) fields.set(part.slice(0, at).trim().toLowerCase(), part.slice(at + 1).trim());
  }
  const hostName = fields.get('hostname');
  const keyName = fields.get('sharedaccesskeyname');
  const key = fields.get('sharedaccesskey');
  if (!hostName || !keyName || !key) {
    throw Errors.invalidField('A hub connection string needs HostName, SharedAccessKeyName and SharedAccessKey.');
  }
  const match = /^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?$/.exec(hostName);
  const port = match?.[2] === undefined ? undefined : Number(match[2]);
  if (!match?.[1] || (port !== undefined && (port < 1 || port > 65535))) {
    throw Errors.invalidField(`The hub HostName '${hostName.slice(0, 100)}' is not a host name with an optional port.`);
  }
  return { hostName, host: match[1].replace(/^\[(.*)\]$/, '$1'), port, keyName, key: assertSymmetricKey(key, 'hub policy key') };
}
