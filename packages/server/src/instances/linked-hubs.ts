import { parseConnectionString, type LinkedHub } from '@opendps/model';
import type { LinkedHubDeclaration } from '../config';

/**
 * A declared hub as the instance stores it. A built-in hub's `hostName` is `host:port` (what devices
 * see as assignedHub); with port 0 the hub rewrites it once it listens. An Azure hub's is the
 * HostName of its connection string.
 */
export function toLinkedHub(declaration: LinkedHubDeclaration, host: string): LinkedHub {
  const hub: LinkedHub = {
    name: declaration.name,
    hostName: declaration.builtin
      ? `${host}:${declaration.builtin.port}`
      : (parseConnectionString(declaration.connectionString ?? '').HostName ?? ''),
    allocationWeight: declaration.allocationWeight ?? 1,
    applyAllocationPolicy: declaration.applyAllocationPolicy ?? true,
  };
  if (declaration.builtin) hub.builtin = { port: declaration.builtin.port };
  if (declaration.connectionString) hub.connectionString = declaration.connectionString;
  if (declaration.location) hub.location = declaration.location;
  return hub;
}
