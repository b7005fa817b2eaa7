/**
 * A simulated device on its assigned hub over MQTT/WS (docs/device-wire.md §8): the hub is named in
 * the CONNECT username and the SAS, on the same WebSocket URL as DPS. It reads its twin, then hears
 * desired-property patches, and sends telemetry on a timer.
 */
import { hubToken } from './device-keys';
import { MqttWsClient, text } from './mqtt-client';

export const HUB_API_VERSION = '2021-04-12';
/** Below the hub's idle limit; the SDK uses 180 s. */
const KEEP_ALIVE_SECONDS = 60;

export interface HubSessionOptions {
  url: string;
  hubHost: string;
  deviceId: string;
  key: string;
  /** Desired properties as read at connect, then each patch as it arrives (with `$version`). */
  onDesired(desired: Record<string, unknown>, kind: 'twin' | 'patch'): void;
  onClose(reason: string): void;
}

const TWIN_ANSWER = /^\$iothub\/twin\/res\/(\d+)\/\?(.*)$/;
const DESIRED_PATCH = /^\$iothub\/twin\/PATCH\/properties\/desired\//;

export class HubSession {
  private sent = 0;

  private constructor(
    private readonly client: MqttWsClient,
    private readonly deviceId: string,
  ) {}

  static async open(options: HubSessionOptions): Promise<HubSession> {
    const { hubHost, deviceId } = options;
    const client = await MqttWsClient.connect({
      url: options.url,
      clientId: deviceId,
      clean: false,
      keepAlive: KEEP_ALIVE_SECONDS,
      username: `${hubHost}/${deviceId}/?api-version=${HUB_API_VERSION}&DeviceClientType=opendps-console`,
      password: await hubToken(hubHost, deviceId, options.key),
    });
    client.onClose(options.onClose);
    const session = new HubSession(client, deviceId);
    const twin = new Promise<Record<string, unknown>>((resolve, reject) => {
      const off = client.onMessage((topic, payload) => {
        const match = TWIN_ANSWER.exec(topic);
        if (!match || new URLSearchParams(match[2]).get('$rid') !== '1') return;
        off();
        const parsed = safeJson(text(payload));
        if (match[1] !== '200') reject(new Error(`The hub answered the twin read with ${match[1]}: ${String(parsed.message ?? '')}`));
        else resolve((parsed.desired ?? {}) as Record<string, unknown>);
      });
    });
    client.onMessage((topic, payload) => {
      if (DESIRED_PATCH.test(topic)) options.onDesired(safeJson(text(payload)), 'patch');
    });
    const granted = await client.subscribe([
      { topic: '$iothub/twin/res/#', qos: 0 },
      { topic: '$iothub/twin/PATCH/properties/desired/#', qos: 0 },
    ]);
    if (granted.includes(0x80)) {
      client.end();
      throw new Error('The hub refused the twin subscriptions');
    }
    await client.publish('$iothub/twin/GET/?$rid=1', ' ', 0);
    options.onDesired(await twin, 'twin');
    return session;
  }

  get messagesSent(): number {
    return this.sent;
  }

  /** One device-to-cloud message at QoS 1, resolved on PUBACK. */
  async sendTelemetry(body: unknown): Promise<void> {
    await this.client.publish(`devices/${this.deviceId}/messages/events/%24.ct=application%2Fjson&%24.ce=utf-8`, JSON.stringify(body), 1);
    this.sent += 1;
  }

  get isOpen(): boolean {
    return this.client.isOpen;
  }

  close(): void {
    this.client.end();
  }
}

function safeJson(body: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(body);
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
