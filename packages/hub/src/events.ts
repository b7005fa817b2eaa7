import type { TwinCollection } from '@opendps/model';

/**
 * What a built-in hub tells the device connections it serves, shared with every other process
 * serving the same hub (other nodes on one Redis, other workers of one node): a device is
 * connected to one of them, the change may be made through any.
 */
export type HubEvent = { hub: string; deviceId: string } & (
  | { kind: 'desired'; patch: TwinCollection; version: number }
  /** The identity was disabled, re-keyed or deleted: its connection must end. */
  | { kind: 'disconnect' }
);

/** Carries hub events between processes; a process never receives its own events back. */
export interface HubEventBus {
  publish(event: HubEvent): void;
  /** Returns the unsubscribe. */
  subscribe(listener: (event: HubEvent) => void): () => void;
}

/** Checks an event that came over the wire from another process. */
export function isHubEvent(value: unknown): value is HubEvent {
  if (typeof value !== 'object' || value === null) return false;
  const event = value as Record<string, unknown>;
  if (typeof event.hub !== 'string' || typeof event.deviceId !== 'string') return false;
  if (event.kind === 'disconnect') return true;
  return event.kind === 'desired' && typeof event.version === 'number' && typeof event.patch === 'object' && event.patch !== null;
}
