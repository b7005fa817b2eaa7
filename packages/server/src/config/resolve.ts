import { resolve as resolvePath } from 'node:path';
import { readConfigFile } from './config-file';
import { START_SETTINGS, type RawSettings, type StartFlag } from './settings';
import { DEFAULT_DATA_DIR, DEFAULT_HOST, DEFAULT_PORTS, type ConfigLayer, type Ports, type ServerConfig } from './types';
import { parseBoolean, parseHost, parseNonEmptyString, parsePort, parseRedisUrl } from './values';

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
  const allowHttpWebhooks = first('allowHttpWebhooks');
  if (allowHttpWebhooks !== undefined) config.allowHttpWebhooks = allowHttpWebhooks;
  const allowLinkLocalWebhooks = first('allowLinkLocalWebhooks');
  if (allowLinkLocalWebhooks !== undefined) config.allowLinkLocalWebhooks = allowLinkLocalWebhooks;
  return config;
}

function layerOf(raw: RawSettings, source: (flag: StartFlag) => string, cwd: string): ConfigLayer {
  const layer: ConfigLayer = {};
  const ports: Partial<Ports> = {};
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
      case 'allow-http-webhooks':
        layer.allowHttpWebhooks = parseBoolean(value, from);
        break;
      case 'allow-link-local-webhooks':
        layer.allowLinkLocalWebhooks = parseBoolean(value, from);
        break;
    }
  }
  if (Object.keys(ports).length) layer.ports = ports;
  return layer;
}
