import { resolve as resolvePath } from 'node:path';
import { readConfigFile } from './config-file';
import { START_SETTINGS, type RawSettings, type StartFlag } from './settings';
import { ConfigError } from './config-error';
import {
  DEFAULT_BIND,
  DEFAULT_DATA_DIR,
  DEFAULT_DRAIN_TIMEOUT_MS,
  DEFAULT_HOST,
  DEFAULT_METRICS_BIND,
  DEFAULT_PORTS,
  MAX_WORKERS,
  type ConfigLayer,
  type HttpConfig,
  type Limits,
  type MetricsConfig,
  type Ports,
  type ServerConfig,
  type WebhookConfig,
} from './types';
import { parseBindAddress, parseBoolean, parseHost, parseInteger, parseLimit, parseLogLevel, parseMilliseconds, parseNonEmptyString, parsePort, parseRedisUrl, parseServerKeyType } from './values';
import { WEBHOOK_LIMITS, parseWebhookValue } from './webhook';

/**
 * Resolves the start configuration: flags > environment > config file > defaults. Throws
 * ConfigError naming the flag, variable or file key that holds a bad value.
 */
export function resolveConfig(flags: RawSettings, env: RawSettings, cwd = process.cwd()): ServerConfig {
  const fromFlags = layerOf(flags, (flag) => `--${flag}`, cwd);
  const fromEnv = layerOf(env, (flag) => START_SETTINGS.find((setting) => setting.flag === flag)?.env ?? flag, cwd);
  const configFile = fromFlags.configFile ?? fromEnv.configFile;
  const fromFile = configFile ? readConfigFile(configFile) : {};
  return withDefaults([fromFlags, fromEnv, fromFile], cwd, configFile);
}

/** Merges layers, first wins, over the defaults. */
export function withDefaults(layers: ConfigLayer[], cwd = process.cwd(), configFile?: string): ServerConfig {
  const first = <K extends keyof ConfigLayer>(key: K): ConfigLayer[K] | undefined =>
    layers.find((layer) => layer[key] !== undefined)?.[key];
  const port = (name: keyof typeof DEFAULT_PORTS): number =>
    layers.find((layer) => layer.ports?.[name] !== undefined)?.ports?.[name] ?? DEFAULT_PORTS[name];
  const hubPort = layers.find((layer) => layer.ports?.hub !== undefined)?.ports?.hub;
  const redisUrl = first('redisUrl');
  const config: ServerConfig = {
    dataDir: resolvePath(cwd, first('dataDir') ?? DEFAULT_DATA_DIR),
    host: first('host') ?? DEFAULT_HOST,
    ports: { mqtt: port('mqtt'), amqp: port('amqp'), https: port('https'), ...(hubPort !== undefined ? { hub: hubPort } : {}) },
    bind: first('bind') ?? DEFAULT_BIND,
    drainTimeoutMs: first('drainTimeoutMs') ?? DEFAULT_DRAIN_TIMEOUT_MS,
    workers: first('workers') ?? 1,
  };
  const tlsCert = layers.find((layer) => layer.tls?.cert !== undefined)?.tls?.cert;
  const tlsKey = layers.find((layer) => layer.tls?.key !== undefined)?.tls?.key;
  if ((tlsCert === undefined) !== (tlsKey === undefined)) {
    throw new ConfigError('--tls-cert and --tls-key (tls.cert and tls.key) go together: give both or neither.');
  }
  if (tlsCert !== undefined && tlsKey !== undefined) config.tls = { cert: resolvePath(cwd, tlsCert), key: resolvePath(cwd, tlsKey) };
  if (configFile) config.configFile = resolvePath(cwd, configFile);
  if (redisUrl) config.redisUrl = redisUrl;
  const instances = first('instances');
  if (instances) config.instances = instances;
  const latency = first('latency');
  if (latency) config.latency = latency;
  const webhookCaFile = first('webhookCaFile');
  if (webhookCaFile) config.webhookCaFile = resolvePath(cwd, webhookCaFile);
  const serverKeyType = first('serverKeyType');
  if (serverKeyType) config.serverKeyType = serverKeyType;
  const http = httpDeadlines(layers);
  if (http) config.http = http;
  const webhook: WebhookConfig = {};
  for (const key of Object.keys(WEBHOOK_LIMITS) as Array<keyof WebhookConfig>) {
    const value = layers.find((layer) => layer.webhook?.[key] !== undefined)?.webhook?.[key];
    if (value !== undefined) webhook[key] = value;
  }
  if (Object.keys(webhook).length) config.webhook = webhook;
  const limits: Partial<Limits> = {};
  for (const name of ['maxConnectionsPerAddress', 'maxConnections', 'mqttRequestTimeoutMs'] as const) {
    const value = layers.find((layer) => layer.limits?.[name] !== undefined)?.limits?.[name];
    if (value !== undefined) limits[name] = value;
  }
  if (Object.keys(limits).length) config.limits = limits;
  const allowHttpWebhooks = first('allowHttpWebhooks');
  if (allowHttpWebhooks !== undefined) config.allowHttpWebhooks = allowHttpWebhooks;
  const allowLinkLocalWebhooks = first('allowLinkLocalWebhooks');
  if (allowLinkLocalWebhooks !== undefined) config.allowLinkLocalWebhooks = allowLinkLocalWebhooks;
  const metricsPort = layers.find((layer) => layer.metrics?.port !== undefined)?.metrics?.port;
  const metricsBind = layers.find((layer) => layer.metrics?.bind !== undefined)?.metrics?.bind;
  if (metricsPort !== undefined) config.metrics = { port: metricsPort, bind: metricsBind ?? DEFAULT_METRICS_BIND };
  const logLevel = first('logLevel');
  if (logLevel) config.logLevel = logLevel;
  return config;
}

/** Each deadline from the first layer that sets it; the headers one may not exceed the request one. */
function httpDeadlines(layers: ConfigLayer[]): HttpConfig | undefined {
  const http: HttpConfig = {};
  for (const key of ['headersTimeoutMs', 'requestTimeoutMs'] as const) {
    const value = layers.find((layer) => layer.http?.[key] !== undefined)?.http?.[key];
    if (value !== undefined) http[key] = value;
  }
  if (http.headersTimeoutMs === undefined && http.requestTimeoutMs === undefined) return undefined;
  const { headersTimeoutMs = 15_000, requestTimeoutMs = Math.max(30_000, headersTimeoutMs) } = http;
  if (headersTimeoutMs > requestTimeoutMs) {
    throw new ConfigError(`http.headersTimeoutMs (${headersTimeoutMs}) must not exceed http.requestTimeoutMs (${requestTimeoutMs}).`);
  }
  return http;
}

function layerOf(raw: RawSettings, source: (flag: StartFlag) => string, cwd: string): ConfigLayer {
  const layer: ConfigLayer = {};
  const ports: Partial<Ports> = {};
  const http: HttpConfig = {};
  const webhook: WebhookConfig = {};
  const limits: Partial<Limits> = {};
  const metrics: Partial<MetricsConfig> = {};
  const tls: { cert?: string; key?: string } = {};
  for (const [flag, value] of Object.entries(raw) as Array<[StartFlag, string]>) {
    const from = source(flag);
    switch (flag) {
      case 'data-dir':
        layer.dataDir = resolvePath(cwd, parseNonEmptyString(value, from));
        break;
      case 'config':
        layer.configFile = resolvePath(cwd, parseNonEmptyString(value, from));
        break;
      case 'redis-url':
        layer.redisUrl = parseRedisUrl(value, from);
        break;
      case 'host':
        layer.host = parseHost(value, from);
        break;
      case 'mqtt-port':
        ports.mqtt = parsePort(value, from);
        break;
      case 'amqp-port':
        ports.amqp = parsePort(value, from);
        break;
      case 'https-port':
        ports.https = parsePort(value, from);
        break;
      case 'hub-port':
        ports.hub = parsePort(value, from);
        break;
      case 'server-key-type':
        layer.serverKeyType = parseServerKeyType(value, from);
        break;
      case 'http-headers-timeout-ms':
        http.headersTimeoutMs = parseMilliseconds(value, from);
        break;
      case 'http-request-timeout-ms':
        http.requestTimeoutMs = parseMilliseconds(value, from);
        break;
      case 'webhook-timeout-ms':
        webhook.timeoutMs = parseWebhookValue('timeoutMs', value, from);
        break;
      case 'webhook-attempts':
        webhook.attempts = parseWebhookValue('attempts', value, from);
        break;
      case 'bind':
        layer.bind = parseBindAddress(value, from);
        break;
      case 'tls-cert':
        tls.cert = resolvePath(cwd, parseNonEmptyString(value, from));
        break;
      case 'tls-key':
        tls.key = resolvePath(cwd, parseNonEmptyString(value, from));
        break;
      case 'drain-timeout-ms':
        layer.drainTimeoutMs = parseMilliseconds(value, from);
        break;
      case 'workers':
        layer.workers = parseInteger(value, from, 1, MAX_WORKERS);
        break;
      case 'webhook-backoff-ms':
        webhook.backoffMs = parseWebhookValue('backoffMs', value, from);
        break;
      case 'max-connections-per-address':
        limits.maxConnectionsPerAddress = parseLimit('maxConnectionsPerAddress', value, from);
        break;
      case 'max-connections':
        limits.maxConnections = parseLimit('maxConnections', value, from);
        break;
      case 'mqtt-request-timeout-ms':
        limits.mqttRequestTimeoutMs = parseLimit('mqttRequestTimeoutMs', value, from);
        break;
      case 'allow-http-webhooks':
        layer.allowHttpWebhooks = parseBoolean(value, from);
        break;
      case 'allow-link-local-webhooks':
        layer.allowLinkLocalWebhooks = parseBoolean(value, from);
        break;
      case 'metrics-port':
        metrics.port = parsePort(value, from);
        break;
      case 'metrics-bind':
        metrics.bind = parseBindAddress(value, from);
        break;
      case 'log-level':
        layer.logLevel = parseLogLevel(value, from);
        break;
    }
  }
  if (Object.keys(ports).length) layer.ports = ports;
  if (Object.keys(http).length) layer.http = http;
  if (Object.keys(webhook).length) layer.webhook = webhook;
  if (Object.keys(limits).length) layer.limits = limits;
  if (Object.keys(metrics).length) layer.metrics = metrics;
  if (Object.keys(tls).length) layer.tls = tls;
  return layer;
}
