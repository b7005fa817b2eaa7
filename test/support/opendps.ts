/**
 * A real OpenDPS (`createServer` from @opendps/server) in-process for the cross-package suites, and
 * the unmodified Azure DPS service SDK pointed at it.
 */
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { silentLogger, type Logger } from '@opendps/model';
import { createServer, type ConnectionInfo, type Ports, type RunningServer, type ServerOptions } from '@opendps/server';
import { ConnectionString, SharedAccessSignature } from 'azure-iot-common';
import { Http, RestApiClient } from 'azure-iot-http-base';
import { ProvisioningServiceClient } from 'azure-iot-provisioning-service';

export interface OpenDpsOptions {
  /** Shared state in this Redis (e.g. from startRedis()); embedded SQLite when absent. */
  redisUrl?: string;
  /** The service host name (`--host`). Default `localhost`. */
  host?: string;
  /** Every port defaults to 0 (a free one). */
  ports?: Partial<Ports>;
  /** No hub port: the default hub is served on the device listeners (as `opendps start` without `--hub-port`). */
  hubOnDeviceListeners?: boolean;
  /** How often instances are re-read from the store (a policy written there applies after this). Default 100 ms. */
  instanceRefreshMs?: number;
  /** The server certificate's key (`--server-key-type`). Default: P-256. */
  serverKeyType?: 'rsa' | 'ec';
  /** Where the server logs (default nowhere). */
  logger?: Logger;
  /** Browser settings and timeouts, passed to createServer as they are. */
  server?: Pick<ServerOptions, 'corsOrigins' | 'webSocketOrigins' | 'browserHost' | 'timeouts'>;
}

export interface OpenDps {
  server: RunningServer;
  connection: ConnectionInfo;
  /** The development root CA (PEM) that issued the server certificate. */
  ca: string;
  dataDir: string;
  /** Stops the server and removes the data directory. */
  stop(): Promise<void>;
}

export async function startOpenDps(options: OpenDpsOptions = {}): Promise<OpenDps> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'opendps-interop-'));
  try {
    const server = await createServer({
      dataDir,
      host: options.host ?? 'localhost',
      ports: { mqtt: 0, amqp: 0, https: 0, ...(options.hubOnDeviceListeners ? {} : { hub: 0 }), ...options.ports },
      ...(options.redisUrl ? { redisUrl: options.redisUrl } : {}),
      ...(options.serverKeyType ? { serverKeyType: options.serverKeyType } : {}),
      logger: options.logger ?? silentLogger,
      instanceRefreshMs: options.instanceRefreshMs ?? 100,
      ...options.server,
    });
    return {
      server,
      connection: server.connection,
      ca: readFileSync(server.caFile, 'utf8'),
      dataDir,
      stop: async () => {
        await server.stop();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
}

/**
 * The unmodified `ProvisioningServiceClient` on any port (docs/service-rest.md §9, option B): the SDK's
 * own RestApiClient over an azure-iot-http-base `Http` whose agent trusts `ca` and whose
 * `defaultPort` is the port of `httpsEndpoint` (`host:port`). The connection string's HostName is
 * the host the SDK connects to and signs for, as `fromConnectionString` does.
 */
export function serviceClient(connectionString: string, httpsEndpoint: string, ca: string): ProvisioningServiceClient {
  const port = Number(httpsEndpoint.slice(httpsEndpoint.lastIndexOf(':') + 1));
  if (!Number.isInteger(port) || port <= 0) throw new Error(`No port in the endpoint '${httpsEndpoint}'.`);
  const cn = ConnectionString.parse(connectionString, ['HostName', 'SharedAccessKeyName', 'SharedAccessKey']);
  const config = {
    host: cn.HostName as string,
    sharedAccessSignature: SharedAccessSignature.create(cn.HostName as string, cn.SharedAccessKeyName as string, cn.SharedAccessKey as string, Date.now()),
  };
  const agent = new Agent({ ca, keepAlive: false });
  (agent as unknown as { defaultPort: number }).defaultPort = port;
  const http = new Http();
  http.setOptions({ ca, http: { agent } });
  type Config = ConstructorParameters<typeof ProvisioningServiceClient>[0];
  type Rest = ConstructorParameters<typeof ProvisioningServiceClient>[1];
  return new ProvisioningServiceClient(config as unknown as Config, new RestApiClient(config as never, 'azure-iot-provisioning-service/interop', http) as unknown as Rest);
}
