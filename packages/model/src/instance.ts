import { randomBytes } from 'node:crypto';
import { ALL_RIGHTS, type LinkedHub, type ProvisioningInstance, type SharedAccessPolicy } from './types';

/** An ID scope as DPS issues them: `0ne` followed by 8 uppercase hex digits. */
export function generateIdScope(): string {
  return `0ne${randomBytes(4).toString('hex').toUpperCase()}`;
}

export const ID_SCOPE_PATTERN = /^0ne[0-9A-F]{8}$/;

export const OWNER_POLICY = 'provisioningserviceowner';

export function ownerPolicy(): SharedAccessPolicy {
  return {
    keyName: OWNER_POLICY,
    primaryKey: randomBytes(32).toString('base64'),
    secondaryKey: randomBytes(32).toString('base64'),
    rights: [...ALL_RIGHTS],
  };
}

/** `HostName=…;SharedAccessKeyName=…;SharedAccessKey=…`, as the Azure service SDK parses it. */
export function serviceConnectionString(instance: ProvisioningInstance, keyName = OWNER_POLICY): string {
  const policy = instance.policies.find((candidate) => candidate.keyName === keyName);
  if (!policy) throw new Error(`No policy '${keyName}' on instance '${instance.name}'.`);
  return `HostName=${instance.serviceHostName};SharedAccessKeyName=${policy.keyName};SharedAccessKey=${policy.primaryKey}`;
}

export function parseConnectionString(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const part of text.split(';')) {
    const at = part.indexOf('=');
    if (at > 0) fields[part.slice(0, at)] = part.slice(at + 1);
  }
  return fields;
}

/** Whether `reference` (a host name as on Azure, or a hub name) names `hub`; case-insensitive (docs/architecture.md). */
export function hubMatches(hub: Pick<LinkedHub, 'name' | 'hostName'>, reference: string): boolean {
  const wanted = reference.trim().toLowerCase();
  return hub.hostName.toLowerCase() === wanted || hub.name.toLowerCase() === wanted;
}
