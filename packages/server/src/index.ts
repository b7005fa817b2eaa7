/**
 * @opendps/server: the composition root. `createServer` starts everything in-process (tests, other
 * packages); the `opendps` CLI (cli.ts) is a thin shell over it.
 */
export { createServer, type ServerOptions, type RunningServer } from './server';
export type { Clock, ServerTimeouts } from './timing';
export * from './config';
export { ensureDevPki, serverCertificateFits, serverHostNames, type DevPki } from './pki/dev-pki';
export { bootstrapInstances, createInstanceRegistry, instanceCollection, type InstanceRegistry } from './instances';
export { CONNECTION_FILE, connectionInfo, writeConnectionFile, type ConnectionInfo, type Endpoints, type InstanceConnection } from './connection-file';
export { createHttpsListener, sendDpsError, type HttpsListenerOptions, type Route, type UpgradeListener } from './https';
export { Lifecycle, type Listener } from './lifecycle';
export { createLogger, REDACTED_PATHS } from './logger';
export { ServerMetrics, type ConnectionProtocol } from './observability/metrics';
export { createReadiness, createMetricsListener, healthRoute, type Readiness, type ReadinessReport } from './observability/health';
