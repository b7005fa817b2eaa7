import type { Logger } from '@opendps/model';
import type { RegistrationService } from '@opendps/registration';

/** What the TPM SASL exchange learned from the device; the keys are raw TPM2B_PUBLIC bytes. */
export interface TpmChallengeRequest {
  idScope: string;
  registrationId: string;
  endorsementKey: Buffer;
  storageRootKey: Buffer;
}

/**
 * Issues the activation blob (docs/tpm.md §3) for a device's EK and SRK. Implemented by the
 * TPM attestation; it keeps what it needs to verify the SAS the device later signs with it.
 * A refusal (unknown enrollment, wrong EK) is thrown as a DpsError and becomes SASL outcome `auth`.
 */
export interface TpmChallenger {
  challenge(request: TpmChallengeRequest): Promise<Buffer>;
}

export interface DpsAmqpFrontEndOptions {
  /** The business hook: every request is answered by it. */
  registration: RegistrationService;
  logger?: Logger;
  /** Enables the SASL mechanism `TPM`; without it the mechanism is not offered. */
  tpm?: TpmChallenger;
  /** Largest request message accepted (default 96 KiB); a larger body gets a coded 413. */
  maxMessageBytes?: number;
  /** A connection that has not opened AMQP (TLS, SASL, Open) by then is closed (default 10 s). */
  connectTimeoutMs?: number;
}

export const DEFAULT_MAX_MESSAGE_BYTES = 96 * 1024;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** Our Open's max-frame-size: a request fits in one frame, larger deliveries span several. */
export const MAX_FRAME_BYTES = 64 * 1024;
/** Our Open's idle-time-out: clients heartbeat at half of it; silence for twice as long closes. */
export const IDLE_TIMEOUT_MS = 120_000;
/** `retry-after` for a retryable error that carries none (docs/device-wire.md §6: at least 2). */
export const DEFAULT_RETRY_AFTER_SECONDS = 2;
