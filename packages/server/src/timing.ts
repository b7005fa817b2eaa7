import type { HttpsWebhookClientOptions } from '@opendps/allocation';
import type { RegistrationServiceOptions } from '@opendps/registration';
import type { WebhookConfig } from './config';

/** What the server reads the time from: epoch milliseconds. */
export interface Clock {
  now(): number;
}

/**
 * Every duration the server waits for or compares with, one place. Each is optional; the defaults
 * are the production values. Tests pass small values (and a fake `Clock`) instead of sleeping.
 */
export interface ServerTimeouts {
  /** Answer `register` at once when the work is done within this (default 1500 ms; 0: always 202). Env OPENDPS_ANSWER_WITHIN_MS. */
  answerWithinMs?: number;
  /** A node's lease on an in-flight registration (default 30 s). Env OPENDPS_LEASE_SECONDS. */
  operationLeaseMs?: number;
  /** How long an operation can be polled (default 1800 s). */
  operationTtlSeconds?: number;
  /** How long a TPM challenge (its nonce, K1) may be answered (default 300 s). */
  tpmChallengeSeconds?: number;
  /** Seconds a device SAS token may be past its expiry (default 300). */
  sasSkewSeconds?: number;
  /** A custom allocation webhook attempt, connect to the end of the answer (default 10 s). Config `webhook.timeoutMs`. */
  webhookAttemptMs?: number;
  /** Webhook attempts in all (default 3). Config `webhook.attempts`. */
  webhookAttempts?: number;
  /** Back-off before the first webhook retry, doubled for each further one (default 500 ms). Config `webhook.backoffMs`. */
  webhookBackoffMs?: number;
  /** MQTT and AMQP: TLS handshake and the protocol's open (CONNECT, AMQP open) must finish within this (default 10 s). */
  connectTimeoutMs?: number;
  /** How often `--tls-cert`/`--tls-key` are checked for a change (default 2 s). */
  tlsPollMs?: number;
  /** How often linked hubs follow the instances other nodes changed (default: the instance refresh, 5 s). */
  hubSyncMs?: number;
  /** `/readyz` counts the store unreachable when a read has not answered by then (default 1000 ms). */
  readinessStoreTimeoutMs?: number;
}

/** The registration service's share of the timeouts: options > environment (`registrationTuning`) > its defaults. */
export function registrationTiming(
  timeouts: ServerTimeouts,
  fromEnv: Pick<RegistrationServiceOptions, 'answerWithinMs' | 'leaseSeconds'>,
  clock: Clock | undefined,
): Pick<RegistrationServiceOptions, 'answerWithinMs' | 'leaseSeconds' | 'leaseMs' | 'operationTtlSeconds' | 'tpmChallengeSeconds' | 'sasSkewSeconds' | 'now'> {
  const answerWithinMs = timeouts.answerWithinMs ?? fromEnv.answerWithinMs;
  return {
    ...fromEnv,
    ...(answerWithinMs !== undefined ? { answerWithinMs } : {}),
    ...(timeouts.operationLeaseMs !== undefined ? { leaseMs: timeouts.operationLeaseMs } : {}),
    ...(timeouts.operationTtlSeconds !== undefined ? { operationTtlSeconds: timeouts.operationTtlSeconds } : {}),
    ...(timeouts.tpmChallengeSeconds !== undefined ? { tpmChallengeSeconds: timeouts.tpmChallengeSeconds } : {}),
    ...(timeouts.sasSkewSeconds !== undefined ? { sasSkewSeconds: timeouts.sasSkewSeconds } : {}),
    ...(clock ? { now: () => clock.now() } : {}),
  };
}

/** The webhook client's timing: `timeouts` > the operator's `webhook` config > the client's defaults. */
export function webhookTiming(timeouts: ServerTimeouts, config: WebhookConfig | undefined): Pick<HttpsWebhookClientOptions, 'timeoutMs' | 'attempts' | 'backoffMs'> {
  const timeoutMs = timeouts.webhookAttemptMs ?? config?.timeoutMs;
  const attempts = timeouts.webhookAttempts ?? config?.attempts;
  const backoff = timeouts.webhookBackoffMs ?? config?.backoffMs;
  return {
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(attempts !== undefined ? { attempts } : {}),
    ...(backoff !== undefined ? { backoffMs: (retry: number) => backoff * 2 ** (retry - 1) } : {}),
  };
}
