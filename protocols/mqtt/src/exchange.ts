import { Errors, toDpsError, type DpsError, type Logger } from '@opendps/model';
import { checkApiVersion, decodeRegisterBody, refusalLogLevel, registrationRequest, type RegistrationRequest, type RegistrationService } from '@opendps/registration';
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
  const { service, device, context, logger } = exchange;
  let decoded: { register: RegistrationRequest } | { operationId: string };
  try {
    if (request.kind === 'invalid') throw request.error;
    if (request.kind === 'register') {
      const body = decodeRegisterBody(payload, exchange.maxPayloadBytes);
      decoded = { register: registrationRequest({ ...device, transport: context.transport, clientAddress: context.remoteAddress }, body) };
    } else {
      if (payload.length > exchange.maxPayloadBytes) throw Errors.payloadTooLarge(`The request body is larger than ${exchange.maxPayloadBytes} bytes.`);
      checkApiVersion(device.apiVersion);
      decoded = { operationId: request.operationId };
    }
  } catch (thrown) {
    const error = toDpsError(thrown);
    logger.info({ kind: request.kind, registrationId: device.registrationId, errorCode: error.errorCode, reason: error.message }, 'device request refused');
    return errorResponse(error);
  }
  try {
    const outcome =
      'register' in decoded
        ? await service.register(decoded.register)
        : await service.operationStatus({
            idScope: device.idScope,
            registrationId: device.registrationId,
            operationId: decoded.operationId,
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
    if (error !== thrown) logger.error({ err: thrown, kind: request.kind }, 'registration service failed');
    else logger[refusalLogLevel(error)]({ kind: request.kind, registrationId: device.registrationId, errorCode: error.errorCode, reason: error.message }, 'device request refused');
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
