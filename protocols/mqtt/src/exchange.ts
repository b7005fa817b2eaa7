import { Errors, toDpsError, type DpsError, type Logger } from '@opendps/model';
import type { RegistrationRequest, RegistrationService } from '@opendps/registration';
import type { ConnectionContext, DeviceIdentity } from './session';
import type { DpsRequest } from './topics';

/** What goes back on `$dps/registrations/res/{status}/?$rid=…`. */
export interface DpsResponse {
  status: number;
  body: unknown;
  retryAfterSeconds?: number;
}

export interface Exchange {
  service: RegistrationService;
  device: DeviceIdentity;
  context: ConnectionContext;
  maxPayloadBytes: number;
  logger: Logger;
}

/** Decode one request, ask the registration service, and return its answer or its coded error. */
export async function answer(exchange: Exchange, request: DpsRequest, payload: Buffer): Promise<DpsResponse> {
  try {
    if (request.kind === 'invalid') throw request.error;
    if (payload.length > exchange.maxPayloadBytes) {
      throw Errors.payloadTooLarge(`The request body is larger than ${exchange.maxPayloadBytes} bytes.`);
    }
    const { service, device, context } = exchange;
    const outcome =
      request.kind === 'register'
        ? await service.register(registrationRequest(device, context, payload))
        : await service.operationStatus({
            idScope: device.idScope,
            registrationId: device.registrationId,
            operationId: request.operationId,
            proof: device.proof,
            transport: context.transport,
          });
    return {
      status: outcome.status,
      body: outcome.body,
      ...(outcome.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: outcome.retryAfterSeconds }),
    };
  } catch (thrown) {
    const error = toDpsError(thrown);
    if (error !== thrown) exchange.logger.error({ err: thrown, kind: request.kind }, 'registration service failed');
    return errorResponse(error);
  }
}

/** A DpsError on the wire: its status, its body, and `retry-after` when it carries one (429, 5xx). */
export function errorResponse(error: DpsError): DpsResponse {
  const retryAfter = retryAfterOf(error);
  return { status: error.status, body: error.toJSON(), ...(retryAfter === undefined ? {} : { retryAfterSeconds: retryAfter }) };
}

/** Convention: a retryable DpsError carries `info['retry-after']`, in whole seconds. */
function retryAfterOf(error: DpsError): number | undefined {
  const value = error.info?.['retry-after'];
  return value !== undefined && /^\d{1,6}$/.test(value) ? Number(value) : undefined;
}

/** Body `{"registrationId", "payload"?}` (Node never sends `tpm` or `csr` over MQTT; TPM is impossible here). */
function registrationRequest(device: DeviceIdentity, context: ConnectionContext, payload: Buffer): RegistrationRequest {
  const body = parseBody(payload);
  if (body.registrationId !== undefined && body.registrationId !== device.registrationId) {
    throw Errors.idMismatch('The registrationId in the body does not match the one in CONNECT.');
  }
  if (body.forceRegistration !== undefined && typeof body.forceRegistration !== 'boolean') {
    throw Errors.invalidField("'forceRegistration' must be a boolean.");
  }
  return {
    idScope: device.idScope,
    registrationId: device.registrationId,
    proof: device.proof,
    transport: context.transport,
    ...(body.payload === undefined ? {} : { payload: body.payload }),
    ...(context.remoteAddress ? { clientAddress: context.remoteAddress } : {}),
    ...(device.apiVersion ? { apiVersion: device.apiVersion } : {}),
    ...(body.forceRegistration === undefined ? {} : { forceRegistration: body.forceRegistration as boolean }),
  };
}

function parseBody(payload: Buffer): Record<string, unknown> {
  let body: unknown;
  try {
    body = JSON.parse(payload.toString('utf8'));
  } catch {
    throw Errors.invalidJson();
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw Errors.invalidField('The request body must be a JSON object.');
  }
  return body as Record<string, unknown>;
}
