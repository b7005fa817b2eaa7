import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { silentLogger, type Logger } from '@opendps/model';
import { createServer, type ConnectionInfo, type RunningServer } from '@opendps/server';
import type { DpsTarget } from '../../src/fleet';
import { startRedis, type RedisServer } from '../../src/redis';
import { createServiceClient, type ServiceClient } from '../../src/service-client';

/**
 * OpenDPS started in this process for a benchmark or a test: every listener on a free port, a
 * temporary data directory, and for `redis` a private redis-server of its own.
 */
export type StoreKind = 'sqlite' | 'redis';

export interface OpenDpsUnderTest {
  store: StoreKind;
  server: RunningServer;
  connection: ConnectionInfo;
  /** Where devices register over MQTT; undefined while the server composes no DPS MQTT listener. */
  target?: DpsTarget;
  /** The service API with the owner policy. */
  service: ServiceClient;
  stop(): Promise<void>;
}

export async function startOpenDps(options: { store: StoreKind; logger?: Logger }): Promise<OpenDpsUnderTest> {
  const dataDir = mkdtempSync(path.join(tmpdir(), `opendps-loadgen-${options.store}-`));
  let redis: RedisServer | undefined;
  let server: RunningServer | undefined;
  const stop = async () => {
    await server?.stop();
    await redis?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    if (options.store === 'redis') redis = await startRedis();
    server = await createServer({
      dataDir,
      host: 'localhost',
      ports: { mqtt: 0, amqp: 0, https: 0, hub: 0 },
      ...(redis ? { redisUrl: redis.url } : {}),
      logger: options.logger ?? silentLogger,
    });
    const { connection } = server;
    const mqtt = connection.endpoints.mqtt;
    const ca = readFileSync(connection.caFile, 'utf8');
    const [host = 'localhost', port = ''] = mqtt ? splitHostPort(mqtt) : [];
    return {
      store: options.store,
      server,
      connection,
      ...(mqtt ? { target: { host, port: Number(port), ca, idScope: connection.idScope } } : {}),
      service: createServiceClient({ connectionString: connection.serviceConnectionString, endpoint: connection.endpoints.https, ca }),
      stop,
    };
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
}

function splitHostPort(endpoint: string): [string, string] {
  const at = endpoint.lastIndexOf(':');
  return [endpoint.slice(0, at), endpoint.slice(at + 1)];
}
