import { resolve as resolvePath } from 'node:path';
import { readConfigFile } from './config-file';
import { START_SETTINGS, type RawSettings, type StartFlag } from './settings';
import { ConfigError } from './config-error';
import { DEFAULT_DATA_DIR, DEFAULT_HOST, DEFAULT_PORTS, type ConfigLayer, type HttpConfig, type Ports, type ServerConfig } from './types';
import { parseHost, parseMilliseconds, parseNonEmptyString, parsePort, parseRedisUrl, parseServerKeyType } from './values';

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
  const port = (name: keyof Ports): number =>
    layers.find((layer) => layer.ports?.[name] !== undefined)?.ports?.[name] ?? DEFAULT_PORTS[name];
  const redisUrl = first('redisUrl');
  const config: ServerConfig = {
    dataDir: resolvePath(cwd, first('dataDir') ?? DEFAULT_DATA_DIR),
    host: first('host') ?? DEFAULT_HOST,
    ports: { mqtt: port('mqtt'), amqp: port('amqp'), https: port('https'), hub: port('hub') },
  };
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
    }
  }
  if (Object.keys(ports).length) layer.ports = ports;
  if (Object.keys(http).length) layer.http = http;
  return layer;
}
