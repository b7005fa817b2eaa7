import { parseConnectionString, type LinkedHub } from '@opendps/model';
import type { LinkedHubDeclaration } from '../config';

/**
 * A declared hub as the instance stores it. A built-in hub's `hostName` (what devices see as
 * assignedHub) is a first guess, `host:port` or `host`, which the running hub rewrites once it
 * listens (HubManager.publishHostNames). An Azure hub's is the HostName of its connection string.
 */
export function toLinkedHub(declaration: LinkedHubDeclaration, host: string): LinkedHub {
  const hub: LinkedHub = {
    name: declaration.name,
    hostName: declaration.builtin
      ? builtInHostName(declaration.builtin, host)
      : (parseConnectionString(declaration.connectionString ?? '').HostName ?? ''),
    allocationWeight: declaration.allocationWeight ?? 1,
    applyAllocationPolicy: declaration.applyAllocationPolicy ?? true,
  };
  if (declaration.builtin) hub.builtin = { ...declaration.builtin };
  if (declaration.connectionString) hub.connectionString = declaration.connectionString;
  if (declaration.location) hub.location = declaration.location;
  return hub;
}

function builtInHostName(builtin: { port?: number; hostName?: string }, host: string): string {
  const name = builtin.hostName ?? host;
  return builtin.port === undefined ? name : `${name}:${builtin.port}`;
}
