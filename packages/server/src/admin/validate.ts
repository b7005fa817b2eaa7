import { parseHubConnectionString } from '@opendps/hub';
import { Errors, ID_SCOPE_PATTERN, type InstanceQuotas, type ProvisioningInstance } from '@opendps/model';
import { MAX_QUOTA } from '@opendps/registration';

/** Instance and hub names, as the config file takes them: letters, digits, `-`, `_`; at most 64. */
const NAME = /^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,62}[A-Za-z0-9])?$/;
/** Azure allows at most 50 linked hubs per instance (docs/service-rest.md §15, not adjustable). */
export const MAX_LINKED_HUBS = 50;
const POLICIES: ReadonlyArray<ProvisioningInstance['allocationPolicy']> = ['hashed', 'geoLatency', 'static'];

export interface InstanceCreation {
  name: string;
  idScope?: string;
  allocationPolicy?: ProvisioningInstance['allocationPolicy'];
  quotas?: InstanceQuotas;
}

export interface InstanceUpdate {
  allocationPolicy?: ProvisioningInstance['allocationPolicy'];
  /** null removes every quota (the defaults apply). */
  quotas?: InstanceQuotas | null;
}

export interface HubLink {
  builtin?: { port?: number; hostName?: string };
  connectionString?: string;
  allocationWeight: number;
  applyAllocationPolicy: boolean;
  location?: string;
}

export function assertName(value: unknown, what: 'instance' | 'hub'): string {
  if (typeof value !== 'string' || !NAME.test(value)) {
    throw Errors.invalidField(`The ${what} name must be 1-64 letters, digits, '-' or '_' (starting and ending with a letter or digit).`);
  }
  return value;
}

export function parseInstanceCreation(body: unknown): InstanceCreation {
  const fields = object(body, ['name', 'idScope', 'allocationPolicy', 'quotas']);
  const creation: InstanceCreation = { name: assertName(fields.name, 'instance') };
  if (fields.idScope !== undefined) {
    if (typeof fields.idScope !== 'string' || !ID_SCOPE_PATTERN.test(fields.idScope)) {
      throw Errors.invalidField("idScope must be '0ne' followed by 8 uppercase hexadecimal digits.");
    }
    creation.idScope = fields.idScope;
  }
  if (fields.allocationPolicy !== undefined) creation.allocationPolicy = allocationPolicy(fields.allocationPolicy);
  if (fields.quotas !== undefined) creation.quotas = quotas(fields.quotas);
  return creation;
}

export function parseInstanceUpdate(body: unknown): InstanceUpdate {
  const fields = object(body, ['allocationPolicy', 'quotas']);
  const update: InstanceUpdate = {};
  if (fields.allocationPolicy !== undefined) update.allocationPolicy = allocationPolicy(fields.allocationPolicy);
  if (fields.quotas !== undefined) update.quotas = fields.quotas === null ? null : quotas(fields.quotas);
  return update;
}

/**
 * A hub link: exactly one of `builtin` (true, or `{ port?, hostName? }`: a host name alone serves
 * it on the device listeners, else port 0 or absent picks a free port of its own) and
 * `connectionString`; `allocationWeight` 1-1000 (default 1); `applyAllocationPolicy` (default true);
 * `location` (for lowest-latency allocation).
 */
export function parseHubLink(body: unknown): HubLink {
  const fields = object(body, ['builtin', 'connectionString', 'allocationWeight', 'applyAllocationPolicy', 'location']);
  const hasBuiltin = fields.builtin !== undefined && fields.builtin !== false;
  const hasConnectionString = fields.connectionString !== undefined;
  if (hasBuiltin === hasConnectionString) {
    throw Errors.invalidField("A linked hub needs exactly one of 'builtin' and 'connectionString'.");
  }
  const link: HubLink = { allocationWeight: 1, applyAllocationPolicy: true };
  if (hasBuiltin) link.builtin = builtinLink(fields.builtin);
  if (hasConnectionString) {
    if (typeof fields.connectionString !== 'string') throw Errors.invalidField('connectionString must be a string.');
    parseHubConnectionString(fields.connectionString);
    link.connectionString = fields.connectionString;
  }
  if (fields.allocationWeight !== undefined && fields.allocationWeight !== null) {
    const weight = fields.allocationWeight;
    if (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 1 || weight > 1000) {
      throw Errors.invalidField('allocationWeight must be an integer from 1 to 1000.');
    }
    link.allocationWeight = weight;
  }
  if (fields.applyAllocationPolicy !== undefined && fields.applyAllocationPolicy !== null) {
    if (typeof fields.applyAllocationPolicy !== 'boolean') throw Errors.invalidField('applyAllocationPolicy must be true or false.');
    link.applyAllocationPolicy = fields.applyAllocationPolicy;
  }
  if (fields.location !== undefined) {
    if (typeof fields.location !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(fields.location)) {
      throw Errors.invalidField('location must be 1-64 letters, digits, - or _.');
    }
    link.location = fields.location;
  }
  return link;
}

function builtinLink(value: unknown): { port?: number; hostName?: string } {
  if (value === true) return { port: 0 };
  const fields = object(value, ['port', 'hostName'], 'builtin');
  const hostName = fields.hostName;
  if (hostName !== undefined && (typeof hostName !== 'string' || !HOST_NAME.test(hostName))) {
    throw Errors.invalidField('builtin.hostName must be a DNS host name without a port (e.g. hub-2.example.com).');
  }
  if (hostName !== undefined && fields.port === undefined) return { hostName };
  const port = fields.port ?? 0;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw Errors.invalidField('builtin.port must be an integer from 0 to 65535 (0 picks a free port).');
  }
  return { port, ...(hostName !== undefined ? { hostName } : {}) };
}

/** RFC 1123 labels, at most 253 characters. */
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

function allocationPolicy(value: unknown): ProvisioningInstance['allocationPolicy'] {
  if (!POLICIES.includes(value as ProvisioningInstance['allocationPolicy'])) {
    throw Errors.invalidAllocation(`The instance allocationPolicy must be one of ${POLICIES.join(', ')} ('custom' is set per enrollment).`);
  }
  return value as ProvisioningInstance['allocationPolicy'];
}

function quotas(value: unknown): InstanceQuotas {
  const fields = object(value, ['registrationsPerSecond', 'pollsPerSecond', 'devicePollsPer10Seconds'], 'quotas');
  const result: InstanceQuotas = {};
  for (const key of ['registrationsPerSecond', 'pollsPerSecond', 'devicePollsPer10Seconds'] as const) {
    const quota = fields[key];
    if (quota === undefined || quota === null) continue;
    if (typeof quota !== 'number' || !Number.isInteger(quota) || quota < 1 || quota > MAX_QUOTA) {
      throw Errors.invalidField(`quotas.${key} must be an integer from 1 to ${MAX_QUOTA}.`);
    }
    result[key] = quota;
  }
  return result;
}

function object(value: unknown, allowed: readonly string[], what = 'The request body'): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw Errors.invalidField(`${what} must be a JSON object.`);
  }
  const unknown = Object.keys(value).filter((key) => !allowed.includes(key));
  if (unknown.length) throw Errors.invalidField(`Unknown field '${unknown[0]}' in ${what === 'The request body' ? 'the request body' : what}; allowed: ${allowed.join(', ')}.`);
  return value as Record<string, unknown>;
}
