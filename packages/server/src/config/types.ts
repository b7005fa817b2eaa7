import type { HttpTimeouts } from '@opendps/model';

/**
 * The server's configuration: what `opendps start` resolves from flags, OPENDPS_* variables, a
 * config file and defaults (ARCHITECTURE.md, "Run contract" and "Config file").
 */

export interface Ports {
  mqtt: number;
  amqp: number;
  https: number;
  /** The built-in hub's device MQTT over TLS. */
  hub: number;
}

/** A linked hub as the config file declares it: a built-in hub, or an Azure IoT hub. */
export interface LinkedHubDeclaration {
  name: string;
  /** `port: 0` gives the hub its own free port. */
  builtin?: { port: number };
  /** `HostName=…;SharedAccessKeyName=…;SharedAccessKey=…` of an Azure IoT hub. */
  connectionString?: string;
  allocationWeight?: number;
  applyAllocationPolicy?: boolean;
  location?: string;
}

export interface InstanceDeclaration {
  name: string;
  /** Generated on first start when absent. */
  idScope?: string;
  allocationPolicy?: 'hashed' | 'geoLatency' | 'static';
  /** When present, exactly these hubs (no extra default hub). */
  linkedHubs?: LinkedHubDeclaration[];
}

export interface LatencyConfig {
  /** IPv4 CIDR -> location. */
  networks: Record<string, string>;
  /** location -> hub name -> milliseconds. */
  table: Record<string, Record<string, number>>;
}

/** Custom allocation webhook calls (ARCHITECTURE.md "Webhook"); each key falls back to its default. */
export interface WebhookConfig {
  /** Per attempt, connect to the end of the answer (default 10 000 ms). */
  timeoutMs?: number;
  /** Attempts in all, including the first (default 3). */
  attempts?: number;
  /** Back-off before the first retry, doubled for each further one (default 500 ms). */
  backoffMs?: number;
}

/** A fully resolved configuration. */
export interface ServerConfig {
  /** Absolute. */
  dataDir: string;
  /** Absolute; the file the configuration came from, if any. */
  configFile?: string;
  redisUrl?: string;
  /** The host name devices and service clients use; the service connection string's HostName. */
  host: string;
  ports: Ports;
  /** Undefined: the instances already stored, or one `default` instance. */
  instances?: InstanceDeclaration[];
  latency?: LatencyConfig;
  /** Extra trusted CAs for https:// custom allocation webhooks. */
  webhookCaFile?: string;
  /** Deadlines for slow HTTP clients on the HTTPS listener and the built-in hubs' REST API. */
  http?: HttpConfig;
  webhook?: WebhookConfig;
  /** The address every listener binds (default loopback: the embedded development setup). */
  bind: string;
  /** Your own certificate and key files (absolute), instead of the dev PKI's server certificate. */
  tls?: TlsFiles;
  /** SIGTERM/SIGINT: how long the drain may take before the process exits anyway. */
  drainTimeoutMs: number;
  /** Processes on this node (node:cluster), sharing the listeners and the store. */
  workers: number;
}

/** PEM files: the certificate with its chain, and its key. */
export interface TlsFiles {
  cert: string;
  key: string;
}

/** The HTTP deadlines operators set (the check interval stays internal). */
export type HttpConfig = Pick<HttpTimeouts, 'headersTimeoutMs' | 'requestTimeoutMs'>;

/** One layer of configuration (flags, environment or file): every key optional. */
export interface ConfigLayer {
  dataDir?: string;
  configFile?: string;
  redisUrl?: string | null;
  host?: string;
  ports?: Partial<Ports>;
  instances?: InstanceDeclaration[];
  latency?: LatencyConfig;
  webhookCaFile?: string;
  http?: HttpConfig;
  webhook?: WebhookConfig;
  bind?: string;
  tls?: Partial<TlsFiles>;
  drainTimeoutMs?: number;
  workers?: number;
}

export const DEFAULT_BIND = '127.0.0.1';
export const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;
export const MAX_WORKERS = 64;

export const DEFAULT_PORTS: Readonly<Ports> = { mqtt: 8883, amqp: 5671, https: 8443, hub: 8884 };
export const DEFAULT_HOST = 'localhost';
export const DEFAULT_DATA_DIR = './.opendps';
