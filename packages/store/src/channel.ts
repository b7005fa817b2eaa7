import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';

/**
 * A broadcast between the processes sharing one Redis (Redis pub/sub; on a Redis Cluster a
 * PUBLISH reaches every node). Delivery is at most once: a process that is disconnected when a
 * message is published misses it, so only hints travel here (a twin change's notification), never
 * state. A process never receives its own messages.
 */
export interface BroadcastChannel {
  publish(message: unknown): void;
  /** Returns the unsubscribe. */
  subscribe(listener: (message: unknown) => void): () => void;
  close(): Promise<void>;
}

export interface RedisChannelOptions {
  /** Called with connection errors and unparsable messages (ioredis keeps reconnecting). */
  onError?: (error: Error) => void;
}

export async function openRedisChannel(url: string, name: string, options: RedisChannelOptions = {}): Promise<BroadcastChannel> {
  const origin = randomUUID();
  const connect = (): Redis => {
    const client = new Redis(url, { lazyConnect: true, retryStrategy: (times) => Math.min(100 * times, 2000) });
    client.on('error', (error: Error) => options.onError?.(error));
    return client;
  };
  const publisher = connect();
  const subscriber = connect();
  try {
    await Promise.all([publisher.connect(), subscriber.connect()]);
    await subscriber.subscribe(name);
  } catch (error) {
    publisher.disconnect();
    subscriber.disconnect();
    throw error;
  }
  const listeners = new Set<(message: unknown) => void>();
  subscriber.on('message', (channel: string, text: string) => {
    if (channel !== name) return;
    let envelope: { origin?: unknown; message?: unknown };
    try {
      envelope = JSON.parse(text) as typeof envelope;
    } catch {
      options.onError?.(new Error(`an unparsable message on ${name}`));
      return;
    }
    if (envelope.origin === origin) return;
    for (const listener of listeners) listener(envelope.message);
  });
  return {
    publish: (message) => {
      publisher.publish(name, JSON.stringify({ origin, message })).catch((error: Error) => options.onError?.(error));
    },
    subscribe: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close: async () => {
      listeners.clear();
      await Promise.allSettled([subscriber.quit(), publisher.quit()]);
    },
  };
}
