import type { DeviceRegistrationState, RegistrationOperationStatus } from '@opendps/model';

/** How a device reached us; front-ends set it, only logs and metrics read it. */
export type Transport = 'mqtt' | 'mqtt-ws' | 'amqp' | 'amqp-ws' | 'https';

/** What the device presented to prove who it is, as the front-end received it. */
export type Proof =
  /** A DPS SAS token exactly as sent (MQTT password, AMQP SASL PLAIN password, HTTP Authorization). */
  | { kind: 'sas'; token: string }
  /** The certificate chain from the TLS handshake, leaf first, DER. Not verified by the socket. */
  | { kind: 'x509'; chain: Buffer[] }
  /** TPM keys from the request body (HTTPS, AMQP SASL TPM); `token` once the device answered the challenge. */
  | { kind: 'tpm'; endorsementKey: string; storageRootKey?: string; token?: string }
  | { kind: 'none' };

/** One registration request, whatever the transport (docs/architecture.md, step 3). */
export interface RegistrationRequest {
  idScope: string;
  registrationId: string;
  proof: Proof;
  /** The device's `payload`, passed to a custom allocation webhook. */
  payload?: unknown;
  /** The device's source address (IPv4-mapped IPv6 allowed), for lowest-latency allocation. */
  clientAddress?: string;
  transport: Transport;
  apiVersion?: string;
  forceRegistration?: boolean;
}

export interface OperationStatusRequest {
  idScope: string;
  registrationId: string;
  operationId: string;
  proof: Proof;
  transport: Transport;
}

export interface RegistrationStatusRequest {
  idScope: string;
  registrationId: string;
  proof: Proof;
  transport: Transport;
}

/**
 * A SAS presented when a connection opens (AMQP SASL PLAIN), checked before the device sends any
 * request. Only SAS: checking it changes nothing in the store (a TPM proof would issue or consume a challenge).
 */
export interface AuthenticationRequest {
  idScope: string;
  registrationId: string;
  /** What a connection proves before any request: a SAS (AMQP SASL PLAIN) or a TLS chain (MQTT CONNECT). */
  proof: Extract<Proof, { kind: 'sas' | 'x509' }>;
  transport: Transport;
}

/**
 * The answer to register and to every poll. `status` is the HTTP-style code a front-end puts on its
 * wire: 202 while assigning (with `retryAfterSeconds`), 200 once final.
 */
export interface RegistrationOutcome {
  status: 200 | 202;
  body: RegistrationOperationStatus;
  retryAfterSeconds?: number;
}

/** The transport-agnostic registration service. Every failure is thrown as a DpsError. */
export interface RegistrationService {
  register(request: RegistrationRequest): Promise<RegistrationOutcome>;
  operationStatus(request: OperationStatusRequest): Promise<RegistrationOutcome>;
  registrationStatus(request: RegistrationStatusRequest): Promise<DeviceRegistrationState>;
  /**
   * Verifies a SAS as a register request would, without registering. Resolves when register would
   * get past attestation (a disabled enrollment too: register answers it with status `disabled`);
   * otherwise throws the DpsError register would throw. A 429 or 5xx means no verdict was reached.
   */
  authenticate(request: AuthenticationRequest): Promise<void>;
}
