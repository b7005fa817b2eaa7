import type { HttpTimeouts } from '@opendps/model';
import type { LogLevel } from '../logger';
import type { OriginList } from './browser';

/**
 * The server's configuration: what `opendps start` resolves from flags, OPENDPS_* variables, a
 * config file and defaults (docs/config.md).
 */

export interface Ports {
  mqtt: number;
  amqp: number;
  https: number;
  /**
   * The default built-in hub's own port (device MQTT and its REST API over TLS), as before hubs
   * were served on the device listeners. Absent: the default hub is served on the MQTT and HTTPS
   * listeners and named `--host` (docs/architecture.md "Hub addresses").
   */
  hub?: number;
}

/** A linked hub as the config file declares it: a built-in hub, or an Azure IoT hub. */
export interface LinkedHubDeclaration {
  name: string;
  /**
   * `hostName` without `port`: served on the device listeners under that host name. `port` (0: a
   * free one) or neither: its own listener, named `host:port`.
   */
  builtin?: { port?: number; hostName?: string };
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

/** Custom allocation webhook calls (docs/architecture.md "Webhook"); each key falls back to its default. */
export interface WebhookConfig {
  /** Per attempt, connect to the end of the answer (default 10 000 ms). */
  timeoutMs?: number;
  /** Attempts in all, including the first (default 3). */
  attempts?: number;
  /** Back-off before the first retry, doubled for each further one (default 500 ms). */
  backoffMs?: number;
}

/**
 * Limits on every device listener (MQTT, AMQP, HTTPS, built-in hubs); unset values take the
 * listeners' defaults (20,000 per address, 50,000 in all, 30 s without an MQTT request).
 */
export interface Limits {
  /** Open connections from one source address, on each listener. */
  maxConnectionsPerAddress: number;
  /** Open connections on each listener. */
  maxConnections: number;
  /** An MQTT connection with no request for this long after CONNECT or an answer is closed. */
  mqttRequestTimeoutMs: number;
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
  /** Only the limits set; the listeners default the rest. */
  limits?: Partial<Limits>;
  /** Webhooks may be http:// to loopback. Undefined: only when `host` is a loopback name (development). */
  allowHttpWebhooks?: boolean;
  /** Webhooks may reach link-local (169.254.0.0/16, fe80::/10) and cloud metadata addresses. Default false. */
  allowLinkLocalWebhooks?: boolean;
  /** The Prometheus `/metrics` (and `/healthz`, `/readyz`) listener; absent: not started. */
  metrics?: MetricsConfig;
  /** pino level (docs/config.md); default `info`. */
  logLevel?: LogLevel;
  /** Undefined: an existing server certificate is kept whatever its key; a new one gets P-256. */
  serverKeyType?: ServerKeyType;
  /** The address every listener binds (default loopback: the embedded development setup). */
  bind: string;
  /** Your own certificate and key files (absolute), instead of the dev PKI's server certificate. */
  tls?: TlsFiles;
  /** SIGTERM/SIGINT: how long the drain may take before the process exits anyway. */
  drainTimeoutMs: number;
  /** Processes on this node (node:cluster), sharing the listeners and the store. */
  workers: number;
  /** The browser-facing host name (no client-certificate request); undefined: `browserHostOf` decides. */
  browserHost?: string;
  /** Origins allowed to call the device REST API; undefined: any (`*`). */
  corsOrigins?: OriginList;
  /** Origins allowed to open WebSockets; undefined: any. */
  webSocketOrigins?: OriginList;
}

/** PEM files: the certificate with its chain, and its key. */
export interface TlsFiles {
  cert: string;
  key: string;
}

/** The metrics listener: its own port, loopback unless `bind` says otherwise (docs/config.md). */
export interface MetricsConfig {
  /** 0 picks a free port. */
  port: number;
  /** Default 127.0.0.1: metrics and health are for the local scraper and load balancer probe. */
  bind?: string;
}

export type ServerKeyType = 'rsa' | 'ec';

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
  limits?: Partial<Limits>;
  allowHttpWebhooks?: boolean;
  allowLinkLocalWebhooks?: boolean;
  metrics?: Partial<MetricsConfig>;
  logLevel?: LogLevel;
  serverKeyType?: ServerKeyType;
  bind?: string;
  tls?: Partial<TlsFiles>;
  drainTimeoutMs?: number;
  workers?: number;
  browserHost?: string;
  corsOrigins?: OriginList;
  webSocketOrigins?: OriginList;
}

export const DEFAULT_BIND = '127.0.0.1';
export const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;
export const MAX_WORKERS = 64;

export const DEFAULT_PORTS: Readonly<Required<Omit<Ports, 'hub'>>> = { mqtt: 8883, amqp: 5671, https: 8443 };
export const DEFAULT_HOST = 'localhost';
export const DEFAULT_DATA_DIR = './.opendps';
export const DEFAULT_METRICS_BIND = '127.0.0.1';
