import cluster from 'node:cluster';
import { isHubEvent, type HubEvent, type HubEventBus } from '@opendps/hub';
import type { Logger } from '@opendps/model';
import { openRedisChannel } from '@opendps/store';

/**
 * Where built-in hubs share twin notifications and disconnects (packages/hub events.ts): Redis
 * pub/sub between the nodes on one Redis (and their workers); between the workers of one node on
 * the embedded store, the cluster primary relays them. A lone process needs none.
 */
export async function openHubEvents(options: { redisUrl?: string; logger: Logger }): Promise<(HubEventBus & { close(): Promise<void> }) | undefined> {
  if (options.redisUrl) {
    const channel = await openRedisChannel(options.redisUrl, 'opendps:hub-events', {
      onError: (error) => options.logger.warn({ err: error.message }, 'hub event channel'),
    });
    return {
      publish: (event) => channel.publish(event),
      subscribe: (listener) =>
        channel.subscribe((message) => {
          if (isHubEvent(message)) listener(message);
        }),
      close: () => channel.close(),
    };
  }
  if (cluster.isWorker) return workerHubEvents();
  return undefined;
}

/** The IPC message a worker sends its primary and the primary relays to the other workers. */
interface HubEventMessage {
  opendps: 'hub-event';
  event: HubEvent;
}

export function isHubEventMessage(message: unknown): message is HubEventMessage {
  return typeof message === 'object' && message !== null && (message as { opendps?: unknown }).opendps === 'hub-event' && isHubEvent((message as { event?: unknown }).event);
}

function workerHubEvents(): HubEventBus & { close(): Promise<void> } {
  const listeners = new Set<(event: HubEvent) => void>();
  const receive = (message: unknown): void => {
    if (!isHubEventMessage(message)) return;
    for (const listener of listeners) listener(message.event);
  };
  process.on('message', receive);
  return {
    publish: (event) => {
      if (process.connected) process.send?.({ opendps: 'hub-event', event } satisfies HubEventMessage);
    },
    subscribe: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close: async () => {
      listeners.clear();
      process.off('message', receive);
    },
  };
}
