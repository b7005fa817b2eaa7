/**
 * Who the console speaks as: a service connection string of a provisioning instance (the service
 * API), or the deployment's admin connection string (the admin API: instances and hubs). Keys stay
 * in this tab's memory; only "remember me" writes them to localStorage (docs/console.md "Sign-in").
 */
export interface Credentials {
  /** `HostName` of the connection string: the `sr` of every token the console signs. */
  hostName: string;
  keyName: string;
  key: string;
  /** `admin` for the deployment's admin policy (`opendpsadmin`), else an instance's service policy. */
  kind: 'admin' | 'service';
}

export const ADMIN_KEY_NAME = 'opendpsadmin';
const REMEMBERED = 'opendps.console.credentials';

export class CredentialsError extends Error {}

/** Parses `HostName=…;SharedAccessKeyName=…;SharedAccessKey=…` (the order does not matter). */
export function parseConnectionString(text: string): Credentials {
  const fields = new Map<string, string>();
  for (const part of text.trim().split(';')) {
    if (!part) continue;
    const at = part.indexOf('=');
    if (at <= 0) throw new CredentialsError(`"${part}" is not Name=value.`);
    fields.set(part.slice(0, at).trim().toLowerCase(), part.slice(at + 1).trim());
  }
  const hostName = fields.get('hostname');
  const keyName = fields.get('sharedaccesskeyname');
  const key = fields.get('sharedaccesskey');
  if (!hostName || !keyName || !key) throw new CredentialsError('A connection string needs HostName, SharedAccessKeyName and SharedAccessKey.');
  try {
    atob(key);
  } catch {
    throw new CredentialsError('SharedAccessKey is not base64.');
  }
  return { hostName, keyName, key, kind: keyName === ADMIN_KEY_NAME ? 'admin' : 'service' };
}

export function remembered(): Credentials | undefined {
  try {
    const text = localStorage.getItem(REMEMBERED);
    return text ? (JSON.parse(text) as Credentials) : undefined;
  } catch {
    return undefined;
  }
}

export function remember(credentials: Credentials | undefined): void {
  if (credentials) localStorage.setItem(REMEMBERED, JSON.stringify(credentials));
  else localStorage.removeItem(REMEMBERED);
}
