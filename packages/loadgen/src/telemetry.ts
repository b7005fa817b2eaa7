import { performance } from 'node:perf_hooks';
import { createSasToken } from '@opendps/attestation';
import { mqttConnection } from './clients/mqtt-connection';
import { openStream } from './clients/stream';
import { LoadgenError, type Credentials } from './clients/types';

/**
 * The device's life after provisioning: connect to its assigned hub over MQTT/TLS as the Node device
 * client does (docs/device-wire.md §8) and send telemetry at QoS 1 every `intervalMs` until
 * `durationMs` has passed.
 */
export interface TelemetryOptions {
  assignedHub: string;
  deviceId: string;
  credentials: Credentials;
  ca?: string | Buffer | undefined;
  intervalMs: number;
  durationMs: number;
  /** Called with each PUBACK's round trip. */
  onSent?: (latencyMs: number) => void;
  timeoutMs?: number;
}

export interface TelemetryResult {
  /** TLS and CONNECT..CONNACK to the hub. */
  connectMs: number;
  sent: number;
}

const HUB_API_VERSION = '2021-04-12';

export async function sendTelemetry(options: TelemetryOptions): Promise<TelemetryResult> {
  const started = performance.now();
  const [host = '', portText] = splitHost(options.assignedHub);
  const port = portText ? Number(portText) : 8883;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const { stream } = await openStream({ endpoint: { host, port }, ca: options.ca, credentials: options.credentials });
  const connection = mqttConnection(stream);
  // Each exchange with the hub has its own deadline; the waits between messages have none.
  const race = <T>(work: Promise<T>): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        connection.destroy();
        reject(new LoadgenError('telemetry-timeout', `the hub did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
    });
    return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
  };
  try {
    const { deviceId, credentials } = options;
    const password = credentials.key
      ? createSasToken({ resource: `${options.assignedHub}/devices/${deviceId}`, key: credentials.key, expiry: Math.floor(Date.now() / 1000) + 3600, encodeResource: true })
      : undefined;
    await race(
      connection.connect({
        clientId: deviceId,
        clean: false,
        keepalive: 180,
        username: `${options.assignedHub}/${deviceId}/?api-version=${HUB_API_VERSION}&DeviceClientType=opendps-loadgen`,
        ...(password !== undefined ? { password } : {}),
      }),
    );
    const connectMs = performance.now() - started;
    const topic = `devices/${strictEncode(deviceId)}/messages/events/`;
    let sent = 0;
    const end = performance.now() + options.durationMs;
    for (;;) {
      const at = performance.now();
      await race(connection.publish(topic, JSON.stringify({ deviceId, sequence: sent, at: Date.now() })));
      options.onSent?.(performance.now() - at);
      sent += 1;
      const next = at + options.intervalMs;
      if (next >= end) break;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - performance.now())));
    }
    connection.disconnect();
    return { connectMs, sent };
  } catch (error) {
    connection.destroy();
    throw error instanceof LoadgenError ? error : new LoadgenError('telemetry', (error as Error).message);
  }
}

function splitHost(hostPort: string): [string, string | undefined] {
  const at = hostPort.lastIndexOf(':');
  return at > 0 && !hostPort.endsWith(']') ? [hostPort.slice(0, at), hostPort.slice(at + 1)] : [hostPort, undefined];
}

/** encodeURIComponent plus `!'()*` (docs/device-wire.md §1). */
function strictEncode(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16)}`);
}
