/** One device-to-cloud message as the hub received it. */
export interface TelemetryMessage {
  deviceId: string;
  properties: Record<string, string>;
  payload: Buffer;
  receivedUtc: string;
}

/**
 * Received telemetry: exact counts per device, plus the most recent messages for inspection. Memory
 * stays bounded: at most `maxMessages` messages and `maxBytes` of payload are kept.
 */
export class TelemetryLog {
  private total = 0;
  private readonly perDevice = new Map<string, number>();
  private readonly recent: TelemetryMessage[] = [];
  private recentBytes = 0;

  constructor(
    private readonly maxMessages = 1000,
    private readonly maxBytes = 8 * 1024 * 1024,
  ) {}

  record(message: TelemetryMessage): void {
    this.total += 1;
    const key = message.deviceId.toLowerCase();
    this.perDevice.set(key, (this.perDevice.get(key) ?? 0) + 1);
    this.recent.push(message);
    this.recentBytes += message.payload.length;
    while (this.recent.length > this.maxMessages || (this.recentBytes > this.maxBytes && this.recent.length > 1)) {
      this.recentBytes -= this.recent.shift()?.payload.length ?? 0;
    }
  }

  count(deviceId?: string): number {
    return deviceId === undefined ? this.total : (this.perDevice.get(deviceId.toLowerCase()) ?? 0);
  }

  /** The most recent messages kept, oldest first. */
  messages(deviceId?: string): TelemetryMessage[] {
    const key = deviceId?.toLowerCase();
    return key === undefined ? [...this.recent] : this.recent.filter((m) => m.deviceId.toLowerCase() === key);
  }
}
