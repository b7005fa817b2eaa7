import { Errors, type InstanceQuotas, type ProvisioningInstance } from '@opendps/model';
import type { Store } from '@opendps/store';

/**
 * Per-instance quotas (docs/service-rest.md §15; docs/architecture.md "Throttling quotas are configurable per
 * instance"). Fixed one-second windows counted with `store.increment`, so every gateway node sharing
 * the store shares the count. DPS throttles register and poll separately; so does this.
 *
 * The defaults are far above what one machine serves (a load test is never throttled; the contract
 * says never below 100 registrations/s). Azure's fixed "5 polls per 10 s per device" is off unless an
 * instance sets `devicePollsPer10Seconds`: our own answers say `retry-after: 2`, but hand-written
 * pollers (and some SDK settings) poll faster, and refusing them would only slow them down.
 */
export const DEFAULT_QUOTAS: Readonly<Required<Omit<InstanceQuotas, 'devicePollsPer10Seconds'>>> = Object.freeze({
  registrationsPerSecond: 1000,
  pollsPerSecond: 5000,
});

/** Largest quota value accepted (per second or per 10 s). */
export const MAX_QUOTA = 1_000_000;

/**
 * `authenticate` is a SAS checked when a connection opens: it costs what a poll costs (one enrollment
 * read, one HMAC), so it counts against the polling quota, but not against a device's own polls.
 */
export type ThrottledRequest = 'register' | 'poll' | 'authenticate';

export interface RegistrationThrottle {
  /** Counts one request; throws `Errors.throttled` (429, `info['retry-after']` in seconds) when over quota. */
  admit(instance: ProvisioningInstance, kind: ThrottledRequest, registrationId: string): Promise<void>;
}

export function createRegistrationThrottle(store: Store, now: () => number = Date.now): RegistrationThrottle {
  const over = async (key: string, windowSeconds: number, limit: number): Promise<number | undefined> => {
    const at = now();
    const windowMs = windowSeconds * 1000;
    const index = Math.floor(at / windowMs);
    // The window index is part of the key, so windows are aligned and the wait is known; the counter
    // lives one window longer than needed only so a slow clock never resets it early.
    const count = await store.increment(`${key}:${index}`, windowSeconds + 1);
    if (count <= limit) return undefined;
    return Math.max(1, Math.ceil(((index + 1) * windowMs - at) / 1000));
  };
  return {
    async admit(instance, kind, registrationId) {
      const quotas = effectiveQuotas(instance.quotas);
      const scope = instance.idScope.toLowerCase();
      const limit = kind === 'register' ? quotas.registrationsPerSecond : quotas.pollsPerSecond;
      let wait = await over(`throttle:${scope}:${kind === 'register' ? 'register' : 'poll'}`, 1, limit);
      if (wait === undefined && kind === 'poll' && quotas.devicePollsPer10Seconds !== undefined) {
        wait = await over(`throttle:${scope}:poll:${registrationId.toLowerCase()}`, 10, quotas.devicePollsPer10Seconds);
      }
      if (wait !== undefined) {
        throw Errors.throttled(`The ${kind === 'register' ? 'registration' : 'polling'} quota of this ID scope is exhausted; retry after ${wait} s.`, {
          'retry-after': String(wait),
        });
      }
    },
  };
}

/** The instance's quotas over the defaults; a value that is not a positive integer falls back to the default. */
export function effectiveQuotas(quotas: InstanceQuotas | undefined): Required<Omit<InstanceQuotas, 'devicePollsPer10Seconds'>> & InstanceQuotas {
  const valid = (value: number | undefined): value is number => Number.isInteger(value) && (value as number) > 0;
  return {
    registrationsPerSecond: valid(quotas?.registrationsPerSecond) ? quotas.registrationsPerSecond : DEFAULT_QUOTAS.registrationsPerSecond,
    pollsPerSecond: valid(quotas?.pollsPerSecond) ? quotas.pollsPerSecond : DEFAULT_QUOTAS.pollsPerSecond,
    ...(valid(quotas?.devicePollsPer10Seconds) ? { devicePollsPer10Seconds: quotas.devicePollsPer10Seconds } : {}),
  };
}
