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
  /** Undefined: an existing server certificate is kept whatever its key; a new one gets P-256. */
  serverKeyType?: ServerKeyType;
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
  serverKeyType?: ServerKeyType;
}

export const DEFAULT_PORTS: Readonly<Ports> = { mqtt: 8883, amqp: 5671, https: 8443, hub: 8884 };
export const DEFAULT_HOST = 'localhost';
export const DEFAULT_DATA_DIR = './.opendps';
