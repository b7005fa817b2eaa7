import { isValidRegistrationId } from '@opendps/model';
import type { Proof } from '@opendps/registration';
import type { ConnectionContext, DeviceIdentity } from './session';
import { parseUsername, type DpsUsername } from './username';

/** CONNACK return codes this front-end uses (MQTT 3.1.1 §3.2.2.3). */
export const IDENTIFIER_REJECTED = 2;
export const BAD_USERNAME_OR_PASSWORD = 4;
export const NOT_AUTHORIZED = 5;

export type ConnectDecision =
  | { accepted: true; device: DeviceIdentity }
  | { accepted: false; returnCode: 2 | 4 | 5; reason: string };

interface ConnectInput {
  clientId: string;
  username: string | undefined;
  password: Buffer | undefined;
  context: ConnectionContext;
}

const refuse = (returnCode: 2 | 4 | 5, reason: string): ConnectDecision => ({ accepted: false, returnCode, reason });

/**
 * CONNECT as a pipeline of small checks. Only structure is judged here; whether the SAS or the
 * certificate is good is the registration service's decision on each request (it sees the proof).
 */
export function decideConnect(input: ConnectInput): ConnectDecision {
  const username = parseUsername(input.username);
  if (!username) {
    return refuse(BAD_USERNAME_OR_PASSWORD, 'username is not {idScope}/registrations/{registrationId}/api-version=…');
  }
  // the client id is the registration id; registration ids are case-insensitive (docs/device-wire.md §2)
  if (input.clientId.toLowerCase() !== username.registrationId.toLowerCase()) {
    return refuse(IDENTIFIER_REJECTED, 'client id does not match the registration id in the username');
  }
  if (!isValidRegistrationId(username.registrationId)) {
    return refuse(IDENTIFIER_REJECTED, 'the registration id is not a valid DPS registration id');
  }
  const proof = proofOf(input.password, input.context);
  if (!proof) return refuse(NOT_AUTHORIZED, 'neither a SAS password nor a TLS client certificate was presented');
  return { accepted: true, device: identity(username, proof) };
}

/** Symmetric key: the DPS SAS is the password. X.509: no password, the chain came in TLS. */
function proofOf(password: Buffer | undefined, context: ConnectionContext): Proof | undefined {
  if (password && password.length > 0) return { kind: 'sas', token: password.toString('utf8') };
  const chain = context.clientCertificateChain;
  if (chain && chain.length > 0) return { kind: 'x509', chain };
  return undefined;
}

function identity(username: DpsUsername, proof: Proof): DeviceIdentity {
  return {
    idScope: username.idScope,
    registrationId: username.registrationId,
    ...(username.apiVersion ? { apiVersion: username.apiVersion } : {}),
    proof,
  };
}
