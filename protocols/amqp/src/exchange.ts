import { Errors } from '@opendps/model';
import { checkApiVersion, registrationRequest, type Proof, type RegisterBody, type RegistrationService } from '@opendps/registration';
import type { DpsAmqpRequest } from './request';
import type { ConnectionContext } from './session';

/** A device whose registration is known: named by SASL, or by its first link for X.509. */
export interface NamedDevice {
  idScope: string;
  registrationId: string;
  proof: Proof;
}

export interface Exchange {
  service: RegistrationService;
  device: NamedDevice;
  context: ConnectionContext;
  /** `com.microsoft:api-version` from the link the request came on. */
  apiVersion?: string;
}

/** What goes back on the client's receiver link. */
export interface AmqpResponse {
  body: unknown;
  retryAfterSeconds?: number;
}

/** Ask the registration service; its DpsErrors propagate to be rejected on the wire. */
export async function answer(exchange: Exchange, request: DpsAmqpRequest): Promise<AmqpResponse> {
  const { service, device, context, apiVersion } = exchange;
  const common = { idScope: device.idScope, registrationId: device.registrationId, proof: device.proof, transport: context.transport };
  switch (request.kind) {
    case 'register': {
      checkTpmKeys(device.proof, request.body);
      const outcome = await service.register(
        registrationRequest(
          { ...common, clientAddress: context.remoteAddress, apiVersion, forceRegistration: request.forceRegistration },
          request.body,
        ),
      );
      return { body: outcome.body, ...(outcome.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: outcome.retryAfterSeconds }) };
    }
    case 'operationStatus': {
      checkApiVersion(apiVersion);
      const outcome = await service.operationStatus({ ...common, operationId: request.operationId });
      return { body: outcome.body, ...(outcome.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: outcome.retryAfterSeconds }) };
    }
    case 'registrationStatus':
      checkApiVersion(apiVersion);
      return { body: await service.registrationStatus(common) };
  }
}

/** The body repeats the TPM keys (docs/tpm.md §2.2): they must be the ones SASL attested. */
function checkTpmKeys(proof: Proof, body: RegisterBody): void {
  if (!body.tpm) return;
  if (proof.kind !== 'tpm') {
    throw Errors.invalidAttestation('TPM keys were sent on a connection that did not authenticate with the SASL mechanism TPM.');
  }
  const sameKey = (a: string | undefined, b: string | undefined) => a === undefined || b === undefined || Buffer.from(a, 'base64').equals(Buffer.from(b, 'base64'));
  if (!sameKey(body.tpm.endorsementKey, proof.endorsementKey) || !sameKey(body.tpm.storageRootKey, proof.storageRootKey)) {
    throw Errors.unauthorized('The TPM keys in the request differ from those of the SASL exchange.');
  }
}
