import { amqpConnection, amqpSequence } from './corpus/amqp';
import type { CorpusContext } from './corpus/context';
import { deviceAndServiceRequests, httpConnection, hubRequests } from './corpus/http';
import { dpsSequence, hubSequence, mqttConnection } from './corpus/mqtt';
import { websocketConnection } from './corpus/websocket';
import type { Rng } from './rng';
import type { Connection } from './target';

/** Every listener OpenDPS opens to devices and operators, by the name `--listeners` takes. */
export const LISTENER_NAMES = ['mqtt', 'mqtt-ws', 'amqp', 'amqp-ws', 'https', 'hub'] as const;
export type ListenerName = (typeof LISTENER_NAMES)[number];

export interface Listener {
  name: ListenerName;
  /** `host:port` to dial (TLS), or null when the server does not run it. */
  endpoint(connection: Connection): string | null;
  /** The frames one connection writes. */
  connection(rng: Rng, ctx: CorpusContext): Buffer[];
}

export const LISTENERS: Record<ListenerName, Listener> = {
  mqtt: { name: 'mqtt', endpoint: (c) => c.endpoints.mqtt, connection: (rng, ctx) => mqttConnection(rng, dpsSequence(ctx, rng)) },
  'mqtt-ws': {
    name: 'mqtt-ws',
    endpoint: (c) => c.endpoints.https,
    connection: (rng, ctx) => websocketConnection(rng, 'mqtt', mqttConnection(rng, dpsSequence(ctx, rng))),
  },
  amqp: { name: 'amqp', endpoint: (c) => c.endpoints.amqp, connection: (rng, ctx) => amqpConnection(rng, amqpSequence(ctx, rng)) },
  'amqp-ws': {
    name: 'amqp-ws',
    endpoint: (c) => c.endpoints.https,
    connection: (rng, ctx) => websocketConnection(rng, 'AMQPWSB10', amqpConnection(rng, amqpSequence(ctx, rng))),
  },
  https: { name: 'https', endpoint: (c) => c.endpoints.https, connection: (rng, ctx) => httpConnection(rng, deviceAndServiceRequests(ctx, rng)) },
  hub: {
    name: 'hub',
    endpoint: (c) => c.endpoints.hubs[0] ?? null,
    connection: (rng, ctx) => (rng.chance(0.5) ? mqttConnection(rng, hubSequence(ctx, rng)) : httpConnection(rng, hubRequests(ctx, rng))),
  },
};

export function parseListeners(list: string): ListenerName[] {
  const names = list.split(',').map((name) => name.trim()).filter(Boolean);
  for (const name of names) {
    if (!(LISTENER_NAMES as readonly string[]).includes(name)) throw new Error(`unknown listener '${name}' (one of ${LISTENER_NAMES.join(', ')})`);
  }
  return names as ListenerName[];
}
