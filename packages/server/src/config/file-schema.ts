import { ID_SCOPE_PATTERN, parseConnectionString } from '@opendps/model';
import { ConfigError } from './config-error';
import { MAX_WORKERS, type ConfigLayer, type InstanceDeclaration, type LatencyConfig, type LinkedHubDeclaration, type WebhookConfig } from './types';
import {
  parseBindAddress,
  parseBoolean,
  parseHost,
  parseInteger,
  parseLimit,
  parseLogLevel,
  parseMilliseconds,
  parseNonEmptyString,
  parsePort,
  parseRedisUrl,
  parseServerKeyType,
  show,
} from './values';
import { WEBHOOK_LIMITS, parseWebhookValue } from './webhook';
import { parseOrigins } from './browser';

/**
 * Validates the whole documented config-file shape (docs/config.md). Unknown keys
 * are refused so that a typo does not silently fall back to a default.
 */

type Json = Record<string, unknown>;

const NAME = /^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,62}[A-Za-z0-9])?$/;
const POLICIES = ['hashed', 'geoLatency', 'static'] as const;

export function validateConfigFile(document: unknown, file: string): ConfigLayer {
  const at = (path: string): string => `${file}: ${path}`;
  const root = object(document, `${file}: the top level`);
  known(
    root,
    ['host', 'dataDir', 'redisUrl', 'ports', 'instances', 'latency', 'webhookCaFile', 'http', 'webhook', 'limits', 'allowHttpWebhooks', 'allowLinkLocalWebhooks', 'metrics', 'logLevel', 'serverKeyType', 'bind', 'tls', 'drainTimeoutMs', 'workers', 'browserHost', 'corsOrigins', 'webSocketOrigins'],
    at(''),
  );
  const layer: ConfigLayer = {};
  if (root.host !== undefined) layer.host = parseHost(root.host, at('host'));
  if (root.dataDir !== undefined) layer.dataDir = parseNonEmptyString(root.dataDir, at('dataDir'));
  if (root.redisUrl === null) layer.redisUrl = null;
  else if (root.redisUrl !== undefined) layer.redisUrl = parseRedisUrl(root.redisUrl, at('redisUrl'));
  if (root.webhookCaFile !== undefined) layer.webhookCaFile = parseNonEmptyString(root.webhookCaFile, at('webhookCaFile'));
  for (const key of ['allowHttpWebhooks', 'allowLinkLocalWebhooks'] as const) {
    if (root[key] !== undefined) layer[key] = parseBoolean(root[key], at(key));
  }
  if (root.serverKeyType !== undefined) layer.serverKeyType = parseServerKeyType(root.serverKeyType, at('serverKeyType'));
  if (root.browserHost !== undefined) layer.browserHost = parseHost(root.browserHost, at('browserHost'));
  for (const key of ['corsOrigins', 'webSocketOrigins'] as const) {
    if (root[key] !== undefined) layer[key] = parseOrigins(root[key], at(key));
  }
  if (root.ports !== undefined) {
    const ports = object(root.ports, at('ports'));
    known(ports, ['mqtt', 'amqp', 'https', 'hub'], at('ports'));
    layer.ports = {};
    for (const name of ['mqtt', 'amqp', 'https', 'hub'] as const) {
      if (ports[name] !== undefined) layer.ports[name] = parsePort(ports[name], at(`ports.${name}`));
    }
  }
  if (root.http !== undefined) {
    const http = object(root.http, at('http'));
    known(http, ['headersTimeoutMs', 'requestTimeoutMs'], at('http'));
    layer.http = {};
    for (const name of ['headersTimeoutMs', 'requestTimeoutMs'] as const) {
      if (http[name] !== undefined) layer.http[name] = parseMilliseconds(http[name], at(`http.${name}`));
    }
  }
  if (root.webhook !== undefined) {
    const webhook = object(root.webhook, at('webhook'));
    const keys = Object.keys(WEBHOOK_LIMITS) as Array<keyof WebhookConfig>;
    known(webhook, keys, at('webhook'));
    layer.webhook = {};
    for (const key of keys) {
      if (webhook[key] !== undefined) layer.webhook[key] = parseWebhookValue(key, webhook[key], at(`webhook.${key}`));
    }
  }
  if (root.limits !== undefined) {
    const limits = object(root.limits, at('limits'));
    const names = ['maxConnectionsPerAddress', 'maxConnections', 'mqttRequestTimeoutMs'] as const;
    known(limits, [...names], at('limits'));
    layer.limits = {};
    for (const name of names) {
      if (limits[name] !== undefined) layer.limits[name] = parseLimit(name, limits[name], at(`limits.${name}`));
    }
  }
  if (root.metrics !== undefined) {
    const metrics = object(root.metrics, at('metrics'));
    known(metrics, ['port', 'bind'], at('metrics'));
    layer.metrics = {};
    if (metrics.port !== undefined) layer.metrics.port = parsePort(metrics.port, at('metrics.port'));
    if (metrics.bind !== undefined) layer.metrics.bind = parseBindAddress(metrics.bind, at('metrics.bind'));
  }
  if (root.logLevel !== undefined) layer.logLevel = parseLogLevel(root.logLevel, at('logLevel'));
  if (root.bind !== undefined) layer.bind = parseBindAddress(root.bind, at('bind'));
  if (root.drainTimeoutMs !== undefined) layer.drainTimeoutMs = parseMilliseconds(root.drainTimeoutMs, at('drainTimeoutMs'));
  if (root.workers !== undefined) layer.workers = parseInteger(root.workers, at('workers'), 1, MAX_WORKERS);
  if (root.tls !== undefined) {
    const tls = object(root.tls, at('tls'));
    known(tls, ['cert', 'key'], at('tls'));
    layer.tls = {};
    for (const name of ['cert', 'key'] as const) {
      if (tls[name] !== undefined) layer.tls[name] = parseNonEmptyString(tls[name], at(`tls.${name}`));
    }
  }
  if (root.instances !== undefined) layer.instances = instances(root.instances, at('instances'));
  if (root.latency !== undefined) layer.latency = latency(root.latency, at('latency'));
  return layer;
}

function instances(value: unknown, path: string): InstanceDeclaration[] {
  const list = array(value, path);
  if (list.length === 0) throw new ConfigError(`${path} must declare at least one instance (omit it for the default).`);
  const declared = list.map((item, index) => instance(item, `${path}[${index}]`));
  unique(declared.map((item) => item.name.toLowerCase()), `${path}: instance names`);
  unique(declared.flatMap((item) => (item.idScope ? [item.idScope] : [])), `${path}: ID scopes`);
  return declared;
}

function instance(value: unknown, path: string): InstanceDeclaration {
  const item = object(value, path);
  known(item, ['name', 'idScope', 'allocationPolicy', 'linkedHubs'], path);
  const declared: InstanceDeclaration = { name: name(item.name, `${path}.name`) };
  if (item.idScope !== undefined) {
    if (typeof item.idScope !== 'string' || !ID_SCOPE_PATTERN.test(item.idScope)) {
      throw new ConfigError(`${path}.idScope must be '0ne' and 8 uppercase hex digits; got ${show(item.idScope)}.`);
    }
    declared.idScope = item.idScope;
  }
  if (item.allocationPolicy !== undefined) {
    if (!POLICIES.includes(item.allocationPolicy as (typeof POLICIES)[number])) {
      throw new ConfigError(`${path}.allocationPolicy must be one of ${POLICIES.join(', ')}; got ${show(item.allocationPolicy)}.`);
    }
    declared.allocationPolicy = item.allocationPolicy as (typeof POLICIES)[number];
  }
  if (item.linkedHubs !== undefined) {
    const hubs = array(item.linkedHubs, `${path}.linkedHubs`).map((hub, index) => linkedHub(hub, `${path}.linkedHubs[${index}]`));
    unique(hubs.map((hub) => hub.name.toLowerCase()), `${path}.linkedHubs: hub names`);
    declared.linkedHubs = hubs;
  }
  return declared;
}

function linkedHub(value: unknown, path: string): LinkedHubDeclaration {
  const item = object(value, path);
  known(item, ['name', 'builtin', 'connectionString', 'allocationWeight', 'applyAllocationPolicy', 'location'], path);
  const hub: LinkedHubDeclaration = { name: name(item.name, `${path}.name`) };
  if ((item.builtin === undefined) === (item.connectionString === undefined)) {
    throw new ConfigError(`${path} must have exactly one of 'builtin' or 'connectionString'.`);
  }
  if (item.builtin !== undefined) {
    const builtin = object(item.builtin, `${path}.builtin`);
    known(builtin, ['port', 'hostName'], `${path}.builtin`);
    const hostName = builtin.hostName === undefined ? undefined : parseHost(builtin.hostName, `${path}.builtin.hostName`);
    // A host name alone: served on the device listeners; else its own port, as before (0: a free one).
    if (hostName !== undefined && builtin.port === undefined) hub.builtin = { hostName };
    else hub.builtin = { port: builtin.port === undefined ? 0 : parsePort(builtin.port, `${path}.builtin.port`), ...(hostName ? { hostName } : {}) };
  }
  if (item.connectionString !== undefined) {
    const fields = typeof item.connectionString === 'string' ? parseConnectionString(item.connectionString) : {};
    if (!fields.HostName || !fields.SharedAccessKeyName || !fields.SharedAccessKey) {
      throw new ConfigError(`${path}.connectionString must be 'HostName=…;SharedAccessKeyName=…;SharedAccessKey=…'.`);
    }
    hub.connectionString = item.connectionString as string;
  }
  if (item.allocationWeight !== undefined) {
    const weight = item.allocationWeight;
    if (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 1 || weight > 1000) {
      throw new ConfigError(`${path}.allocationWeight must be an integer from 1 to 1000; got ${show(weight)}.`);
    }
    hub.allocationWeight = weight;
  }
  if (item.applyAllocationPolicy !== undefined) {
    if (typeof item.applyAllocationPolicy !== 'boolean') {
      throw new ConfigError(`${path}.applyAllocationPolicy must be true or false; got ${show(item.applyAllocationPolicy)}.`);
    }
    hub.applyAllocationPolicy = item.applyAllocationPolicy;
  }
  if (item.location !== undefined) hub.location = parseNonEmptyString(item.location, `${path}.location`);
  return hub;
}

function latency(value: unknown, path: string): LatencyConfig {
  const item = object(value, path);
  known(item, ['networks', 'table'], path);
  const networks: Record<string, string> = {};
  for (const [cidr, location] of Object.entries(item.networks === undefined ? {} : object(item.networks, `${path}.networks`))) {
    if (!isIpv4Cidr(cidr)) throw new ConfigError(`${path}.networks: '${cidr}' is not an IPv4 CIDR such as 127.0.0.0/8.`);
    networks[cidr] = parseNonEmptyString(location, `${path}.networks['${cidr}']`);
  }
  const table: Record<string, Record<string, number>> = {};
  for (const [location, hubs] of Object.entries(item.table === undefined ? {} : object(item.table, `${path}.table`))) {
    table[location] = {};
    for (const [hub, milliseconds] of Object.entries(object(hubs, `${path}.table.${location}`))) {
      if (typeof milliseconds !== 'number' || !Number.isFinite(milliseconds) || milliseconds < 0) {
        throw new ConfigError(`${path}.table.${location}.${hub} must be a number of milliseconds >= 0; got ${show(milliseconds)}.`);
      }
      table[location][hub] = milliseconds;
    }
  }
  return { networks, table };
}

function isIpv4Cidr(text: string): boolean {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(text);
  if (!match) return false;
  const [, a, b, c, d, bits] = match.map(Number) as number[];
  return [a, b, c, d].every((octet) => octet !== undefined && octet <= 255) && bits !== undefined && bits <= 32;
}

function name(value: unknown, path: string): string {
  if (typeof value !== 'string' || !NAME.test(value)) {
    throw new ConfigError(`${path} must be 1-64 letters, digits, '-' or '_' (not first or last); got ${show(value)}.`);
  }
  return value;
}

function object(value: unknown, path: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(`${path} must be an object; got ${show(value)}.`);
  }
  return value as Json;
}

function array(value: unknown, path: string): unknown[] {
  if (!Array.isArray(value)) throw new ConfigError(`${path} must be a list; got ${show(value)}.`);
  return value;
}

function known(item: Json, keys: string[], path: string): void {
  const unknown = Object.keys(item).filter((key) => !keys.includes(key));
  if (unknown.length) {
    const where = path.endsWith(': ') ? path.slice(0, -2) : path;
    throw new ConfigError(`${where}: unknown key '${unknown[0]}' (known: ${keys.join(', ')}).`);
  }
}

function unique(values: string[], what: string): void {
  const seen = new Set<string>();
  for (const value of values) {
    if (seen.has(value)) throw new ConfigError(`${what} must be unique; '${value}' appears twice.`);
    seen.add(value);
  }
}
