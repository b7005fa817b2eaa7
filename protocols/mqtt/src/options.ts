import type { Logger } from '@opendps/model';
import type { RegistrationService } from '@opendps/registration';

export interface DpsMqttFrontEndOptions {
  /** The business hook: every request is answered by it. */
  registration: RegistrationService;
  logger?: Logger;
  /** Largest request body accepted (default 96 KiB); a larger one gets a coded 413. */
  maxPacketBytes?: number;
  /** A connection that has not sent CONNECT (or finished TLS) by then is closed (default 10 s). */
  connectTimeoutMs?: number;
}

export const DEFAULT_MAX_PACKET_BYTES = 96 * 1024;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** A PUBLISH also carries its topic (at most 65535 bytes + 2) and a packet id (2 bytes). */
export const TOPIC_ALLOWANCE = 2 + 65_535 + 2;
