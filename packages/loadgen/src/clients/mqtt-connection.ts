import type { Duplex } from 'node:stream';
import mqttPacket, { type IConnackPacket, type IPublishPacket, type Packet } from 'mqtt-packet';
import { LoadgenError } from './types';

/**
 * The least MQTT 3.1.1 client a device needs: CONNECT, SUBSCRIBE, PUBLISH at QoS 1 with its PUBACK,
 * incoming PUBLISHes (acknowledged when QoS 1), DISCONNECT. Each packet leaves in one write, so in one
 * TLS record. Shared by DPS registration and hub telemetry.
 */
export interface MqttConnection {
  connect(options: { clientId: string; username: string; password?: string; clean: boolean; keepalive: number }): Promise<void>;
  subscribe(topic: string, qos: 0 | 1): Promise<number>;
  /** Resolves on the PUBACK. */
  publish(topic: string, payload: string | Buffer): Promise<void>;
  onMessage(listener: (topic: string, payload: Buffer) => void): void;
  /** Called once when the connection fails or closes. */
  onFailure(listener: (error: LoadgenError) => void): void;
  disconnect(): void;
  destroy(): void;
}

export function mqttConnection(stream: Duplex): MqttConnection {
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const pending = new Map<number, (packet: Packet) => void>();
  let connack: ((packet: IConnackPacket) => void) | undefined;
  let listener: (topic: string, payload: Buffer) => void = () => undefined;
  let failure: LoadgenError | undefined;
  let nextId = 1;
  const failures = new Set<(error: LoadgenError) => void>();
  const fail = (error: LoadgenError) => {
    if (failure) return;
    failure = error;
    for (const reject of failures) reject(error);
  };

  stream.on('data', (chunk: Buffer) => parser.parse(chunk));
  stream.on('error', (error: Error & { code?: string }) => fail(new LoadgenError(error.code ?? 'connection', error.message)));
  stream.on('close', () => fail(new LoadgenError('closed', 'the server closed the connection')));
  parser.on('error', (error) => fail(new LoadgenError('protocol', `bad MQTT packet: ${error.message}`)));
  parser.on('packet', (packet: Packet) => {
    switch (packet.cmd) {
      case 'connack':
        connack?.(packet);
        return;
      case 'suback':
      case 'puback':
      case 'unsuback':
        pending.get(packet.messageId ?? -1)?.(packet);
        return;
      case 'publish': {
        const publish = packet as IPublishPacket;
        if (publish.qos === 1 && publish.messageId !== undefined) write({ cmd: 'puback', messageId: publish.messageId });
        listener(publish.topic, Buffer.isBuffer(publish.payload) ? publish.payload : Buffer.from(publish.payload));
        return;
      }
      default:
        return;
    }
  });

  const write = (packet: Packet) => {
    if (!stream.destroyed) stream.write(mqttPacket.generate(packet));
  };
  const awaitFor = <T>(register: (resolve: (value: T) => void) => void): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (failure) return reject(failure);
      const onFail = (error: LoadgenError) => reject(error);
      failures.add(onFail);
      register((value) => {
        failures.delete(onFail);
        resolve(value);
      });
    });
  const messageId = () => {
    const id = nextId;
    nextId = nextId === 0xffff ? 1 : nextId + 1;
    return id;
  };

  return {
    async connect(options) {
      const answered = awaitFor<IConnackPacket>((resolve) => (connack = resolve));
      write({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 4,
        clientId: options.clientId,
        clean: options.clean,
        keepalive: options.keepalive,
        username: options.username,
        ...(options.password !== undefined ? { password: Buffer.from(options.password) } : {}),
      });
      const packet = await answered;
      if (packet.returnCode !== 0) throw new LoadgenError(`connack-${packet.returnCode ?? '?'}`, `CONNACK refused with return code ${packet.returnCode}`);
    },
    async subscribe(topic, qos) {
      const id = messageId();
      const answered = awaitFor<Packet>((resolve) => pending.set(id, resolve));
      write({ cmd: 'subscribe', messageId: id, subscriptions: [{ topic, qos }] });
      const packet = await answered.finally(() => pending.delete(id));
      const granted = packet.cmd === 'suback' ? packet.granted[0] : undefined;
      if (typeof granted !== 'number' || granted >= 0x80) throw new LoadgenError('suback-refused', `SUBSCRIBE ${topic} was refused`);
      return granted;
    },
    async publish(topic, payload) {
      const id = messageId();
      const answered = awaitFor<Packet>((resolve) => pending.set(id, resolve));
      write({ cmd: 'publish', topic, payload, qos: 1, messageId: id, retain: false, dup: false });
      await answered.finally(() => pending.delete(id));
    },
    onMessage(next) {
      listener = next;
    },
    onFailure(next) {
      if (failure) next(failure);
      else failures.add(next);
    },
    disconnect() {
      failure ??= new LoadgenError('closed', 'disconnected');
      if (!stream.destroyed) stream.end(mqttPacket.generate({ cmd: 'disconnect' }));
    },
    destroy() {
      failure ??= new LoadgenError('closed', 'disconnected');
      stream.destroy();
    },
  };
}
