import {
  connackReason,
  DISCONNECT,
  encodeConnect,
  encodePuback,
  encodePublish,
  encodeSubscribe,
  PacketReader,
  PacketType,
  PINGREQ,
  type ConnectOptions,
  type IncomingPacket,
} from './mqtt-codec';

export interface MqttWsOptions extends ConnectOptions {
  url: string;
  /** How long CONNECT, SUBSCRIBE and a QoS 1 PUBLISH may wait for their answer (ms). */
  timeoutMs?: number;
}

export type MessageHandler = (topic: string, payload: Uint8Array) => void;

const decoder = new TextDecoder();

/**
 * A small MQTT 3.1.1 client over a browser WebSocket (subprotocol `mqtt`): what a simulated device
 * needs and no more, in place of mqtt.js (over the console's bundle budget).
 */
export class MqttWsClient {
  private readonly reader = new PacketReader();
  private readonly pending = new Map<number, { resolve: (packet: IncomingPacket) => void; reject: (error: Error) => void; timer: ReturnType<typeof setTimeout> }>();
  private readonly handlers = new Set<MessageHandler>();
  private readonly closeHandlers = new Set<(reason: string) => void>();
  private nextId = 1;
  private pinger: ReturnType<typeof setInterval> | undefined;
  private closed: string | undefined;

  private constructor(
    private readonly ws: WebSocket,
    private readonly timeoutMs: number,
  ) {}

  /** Opens the WebSocket, sends CONNECT and resolves on CONNACK 0 (else rejects with the reason in words). */
  static connect(options: MqttWsOptions): Promise<MqttWsClient> {
    const ws = new WebSocket(options.url, 'mqtt');
    ws.binaryType = 'arraybuffer';
    const client = new MqttWsClient(ws, options.timeoutMs ?? 15_000);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => client.close(`no CONNACK within ${client.timeoutMs} ms`), client.timeoutMs);
      const offClose = client.onClose((reason) => {
        clearTimeout(timer);
        reject(new Error(`MQTT connection closed before CONNACK (${reason})`));
      });
      client.connack = (code) => {
        clearTimeout(timer);
        offClose();
        if (code !== 0) {
          client.close(`CONNACK ${code}`);
          reject(new Error(`MQTT connection refused: ${connackReason(code)} (CONNACK ${code})`));
          return;
        }
        if (options.keepAlive > 0) client.pinger = setInterval(() => client.send(PINGREQ), options.keepAlive * 1000);
        resolve(client);
      };
      ws.onopen = () => client.send(encodeConnect(options));
      ws.onmessage = (event) => client.receive(new Uint8Array(event.data as ArrayBuffer));
      ws.onerror = () => client.close('WebSocket error');
      ws.onclose = (event) => client.close(`WebSocket closed${event.code ? ` (${event.code}${event.reason ? ` ${event.reason}` : ''})` : ''}`);
    });
  }

  private connack: (code: number) => void = () => undefined;

  get isOpen(): boolean {
    return this.closed === undefined;
  }

  onMessage(handler: MessageHandler): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  onClose(handler: (reason: string) => void): () => void {
    this.closeHandlers.add(handler);
    return () => this.closeHandlers.delete(handler);
  }

  /** Resolves with the granted QoS of each filter (0x80 is a refusal). */
  async subscribe(filters: { topic: string; qos: 0 | 1 }[]): Promise<number[]> {
    const id = this.packetId();
    const answer = await this.request(id, encodeSubscribe(id, filters), 'SUBACK');
    return answer.type === PacketType.suback ? answer.granted : [];
  }

  /** QoS 0 resolves once written; QoS 1 once the PUBACK arrives. */
  async publish(topic: string, payload: Uint8Array | string, qos: 0 | 1): Promise<void> {
    if (qos === 0) {
      this.send(encodePublish({ topic, payload, qos }));
      return;
    }
    const id = this.packetId();
    await this.request(id, encodePublish({ topic, payload, qos, packetId: id }), 'PUBACK');
  }

  /** DISCONNECT, then the socket is closed. */
  end(): void {
    if (this.closed !== undefined) return;
    this.send(DISCONNECT);
    this.close('disconnected');
  }

  close(reason: string): void {
    if (this.closed !== undefined) return;
    this.closed = reason;
    clearInterval(this.pinger);
    for (const waiting of this.pending.values()) {
      clearTimeout(waiting.timer);
      waiting.reject(new Error(`MQTT connection closed (${reason})`));
    }
    this.pending.clear();
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close();
    for (const handler of this.closeHandlers) handler(reason);
  }

  private packetId(): number {
    const id = this.nextId;
    this.nextId = (this.nextId % 0xffff) + 1;
    return id;
  }

  private request(id: number, bytes: Uint8Array, awaited: string): Promise<IncomingPacket> {
    return new Promise((resolve, reject) => {
      if (this.closed !== undefined) {
        reject(new Error(`MQTT connection closed (${this.closed})`));
        return;
      }
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`No ${awaited} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.send(bytes);
    });
  }

  private send(bytes: Uint8Array): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(bytes);
  }

  private receive(chunk: Uint8Array): void {
    let packets: IncomingPacket[];
    try {
      packets = this.reader.push(chunk);
    } catch (error) {
      this.close((error as Error).message);
      return;
    }
    for (const packet of packets) {
      switch (packet.type) {
        case PacketType.connack:
          this.connack(packet.returnCode);
          break;
        case PacketType.publish:
          if (packet.qos === 1 && packet.packetId !== undefined) this.send(encodePuback(packet.packetId));
          for (const handler of this.handlers) handler(packet.topic, packet.payload);
          break;
        case PacketType.puback:
        case PacketType.suback: {
          const waiting = this.pending.get(packet.packetId);
          if (!waiting) break;
          this.pending.delete(packet.packetId);
          clearTimeout(waiting.timer);
          waiting.resolve(packet);
          break;
        }
        case PacketType.pingresp:
          break;
      }
    }
  }
}

export function text(payload: Uint8Array): string {
  return decoder.decode(payload);
}
