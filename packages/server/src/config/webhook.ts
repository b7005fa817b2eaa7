import type { WebhookConfig } from './types';
import { parseInteger } from './values';

/**
 * Bounds of the `webhook` settings: an attempt needs at least a TLS handshake's time, and no
 * registration should wait on one webhook for more than about ten minutes in all.
 */
export const WEBHOOK_LIMITS: Readonly<Record<keyof WebhookConfig, { min: number; max: number }>> = {
  timeoutMs: { min: 100, max: 120_000 },
  attempts: { min: 1, max: 10 },
  backoffMs: { min: 0, max: 60_000 },
};

export function parseWebhookValue(key: keyof WebhookConfig, value: unknown, source: string): number {
  const { min, max } = WEBHOOK_LIMITS[key];
  return parseInteger(value, source, min, max);
}
