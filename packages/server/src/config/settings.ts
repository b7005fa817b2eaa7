/**
 * The `opendps start` settings: each one a flag, an OPENDPS_* variable and a config-file key
 * (docs/config.md). One table so the three stay in step.
 */
export const START_SETTINGS = [
  { flag: 'data-dir', env: 'OPENDPS_DATA_DIR', key: 'dataDir', value: 'PATH', help: 'state, dev CA and connection.json (default ./.opendps)' },
  { flag: 'config', env: 'OPENDPS_CONFIG', key: 'configFile', value: 'FILE', help: 'a JSON or YAML config file' },
  { flag: 'redis-url', env: 'OPENDPS_REDIS_URL', key: 'redisUrl', value: 'URL', help: 'share state through Redis (redis:// or rediss://)' },
  { flag: 'host', env: 'OPENDPS_HOST', key: 'host', value: 'HOST', help: 'host name devices and service clients use (default localhost)' },
  { flag: 'mqtt-port', env: 'OPENDPS_MQTT_PORT', key: 'ports.mqtt', value: 'PORT', help: 'device MQTT over TLS (default 8883)' },
  { flag: 'amqp-port', env: 'OPENDPS_AMQP_PORT', key: 'ports.amqp', value: 'PORT', help: 'device AMQP over TLS (default 5671)' },
  { flag: 'https-port', env: 'OPENDPS_HTTPS_PORT', key: 'ports.https', value: 'PORT', help: 'device and service REST APIs, WebSockets (default 8443)' },
  { flag: 'hub-port', env: 'OPENDPS_HUB_PORT', key: 'ports.hub', value: 'PORT', help: "gives the default built-in hub its own port (device MQTT and REST over TLS) and a host:port name; default: none, it is served on the MQTT and HTTPS ports" },
  { flag: 'server-key-type', env: 'OPENDPS_SERVER_KEY_TYPE', key: 'serverKeyType', value: 'rsa|ec', help: 'server certificate key: ec (P-256, the default for a new one) or rsa (2048)' },
  { flag: 'http-headers-timeout-ms', env: 'OPENDPS_HTTP_HEADERS_TIMEOUT_MS', key: 'http.headersTimeoutMs', value: 'MS', help: 'an HTTP request must send its headers within (default 15000)' },
  { flag: 'http-request-timeout-ms', env: 'OPENDPS_HTTP_REQUEST_TIMEOUT_MS', key: 'http.requestTimeoutMs', value: 'MS', help: 'an HTTP request must arrive whole within (default 30000)' },
  { flag: 'webhook-timeout-ms', env: 'OPENDPS_WEBHOOK_TIMEOUT_MS', key: 'webhook.timeoutMs', value: 'MS', help: 'custom allocation webhook: time per attempt (default 10000)' },
  { flag: 'webhook-attempts', env: 'OPENDPS_WEBHOOK_ATTEMPTS', key: 'webhook.attempts', value: 'N', help: 'custom allocation webhook: attempts in all (default 3)' },
  { flag: 'bind', env: 'OPENDPS_BIND', key: 'bind', value: 'ADDRESS', help: 'the address every listener binds (default 127.0.0.1; 0.0.0.0 for all interfaces)' },
  { flag: 'tls-cert', env: 'OPENDPS_TLS_CERT', key: 'tls.cert', value: 'FILE', help: 'your server certificate (PEM, leaf first, then the chain) instead of the dev PKI; reloaded on change or SIGHUP' },
  { flag: 'tls-key', env: 'OPENDPS_TLS_KEY', key: 'tls.key', value: 'FILE', help: 'the private key of --tls-cert (PEM)' },
  { flag: 'drain-timeout-ms', env: 'OPENDPS_DRAIN_TIMEOUT_MS', key: 'drainTimeoutMs', value: 'MS', help: 'on SIGTERM/SIGINT, exit within this bound (default 10000)' },
  { flag: 'workers', env: 'OPENDPS_WORKERS', key: 'workers', value: 'N', help: 'processes on this node sharing the listeners and the store (default 1)' },
  { flag: 'webhook-backoff-ms', env: 'OPENDPS_WEBHOOK_BACKOFF_MS', key: 'webhook.backoffMs', value: 'MS', help: 'custom allocation webhook: wait before the first retry, doubled after (default 500)' },
  { flag: 'max-connections-per-address', env: 'OPENDPS_MAX_CONNECTIONS_PER_ADDRESS', key: 'limits.maxConnectionsPerAddress', value: 'N', help: 'open connections from one address, per device listener (default 20000)' },
  { flag: 'max-connections', env: 'OPENDPS_MAX_CONNECTIONS', key: 'limits.maxConnections', value: 'N', help: 'open connections per device listener (default 50000)' },
  { flag: 'mqtt-request-timeout-ms', env: 'OPENDPS_MQTT_REQUEST_TIMEOUT_MS', key: 'limits.mqttRequestTimeoutMs', value: 'MS', help: 'close an MQTT connection without a request this long after CONNECT or an answer (default 30000)' },
  {
    flag: 'allow-http-webhooks', env: 'OPENDPS_ALLOW_HTTP_WEBHOOKS', key: 'allowHttpWebhooks', value: 'true|false',
    help: 'custom allocation webhooks may be http:// to loopback (default true only when --host is loopback)',
  },
  {
    flag: 'allow-link-local-webhooks', env: 'OPENDPS_ALLOW_LINK_LOCAL_WEBHOOKS', key: 'allowLinkLocalWebhooks', value: 'true|false',
    help: 'custom allocation webhooks may reach link-local and cloud metadata addresses (default false)',
  },
  { flag: 'browser-host', env: 'OPENDPS_BROWSER_HOST', key: 'browserHost', value: 'HOST', help: 'host name on the HTTPS port whose TLS asks for no client certificate, for browsers (default browser.{host})' },
  { flag: 'cors-origins', env: 'OPENDPS_CORS_ORIGINS', key: 'corsOrigins', value: 'ORIGINS', help: 'page origins allowed to call the device REST API, comma-separated, or * (default *)' },
  { flag: 'websocket-origins', env: 'OPENDPS_WEBSOCKET_ORIGINS', key: 'webSocketOrigins', value: 'ORIGINS', help: 'page origins allowed to open /$iothub/websocket, comma-separated, or * (default *; clients sending no Origin always may)' },
  { flag: 'metrics-port', env: 'OPENDPS_METRICS_PORT', key: 'metrics.port', value: 'PORT', help: 'Prometheus /metrics, /healthz and /readyz on this port (default: not served)' },
  { flag: 'metrics-bind', env: 'OPENDPS_METRICS_BIND', key: 'metrics.bind', value: 'ADDRESS', help: 'address the metrics port binds (default 127.0.0.1)' },
  { flag: 'log-level', env: 'OPENDPS_LOG_LEVEL', key: 'logLevel', value: 'LEVEL', help: 'trace, debug, info, warn, error, fatal or silent (default info)' },
] as const;

export type StartSetting = (typeof START_SETTINGS)[number];
export type StartFlag = StartSetting['flag'];

/** Raw string values by flag name, from parseArgs or from the environment. */
export type RawSettings = Partial<Record<StartFlag, string>>;

export function settingsFromEnv(env: NodeJS.ProcessEnv): RawSettings {
  const raw: RawSettings = {};
  for (const setting of START_SETTINGS) {
    const value = env[setting.env];
    if (value !== undefined && value !== '') raw[setting.flag] = value;
  }
  return raw;
}
