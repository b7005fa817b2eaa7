import type { ServerResponse } from 'node:http';
import { writeJson, type DpsError } from '@opendps/model';

/**
 * IoT Hub error codes by DPS error name (status + errorCode). azure-iothub (and azure-iot-http-base)
 * parse `Message` as `ErrorCode:<code>;<message>`: the code picks `DeviceNotFoundError` on a 404 and
 * the HTTP status picks every other error class, so the status must be the one IoT Hub uses.
 */
const CODE_BY_ERROR: Record<number, string> = {
  400001: 'ArgumentInvalid',
  400014: 'ArgumentInvalid',
  401000: 'IotHubUnauthorizedAccess',
  401002: 'IotHubUnauthorizedAccess',
  401003: 'IotHubUnauthorizedAccess',
  401005: 'IotHubUnauthorizedAccess',
  401006: 'IotHubUnauthorizedAccess',
  404209: 'DeviceNotFound',
  409001: 'DeviceAlreadyExists',
  412001: 'PreconditionFailed',
  413001: 'MessageTooLarge',
};

const CODE_BY_STATUS: Record<number, string> = {
  400: 'ArgumentInvalid',
  401: 'IotHubUnauthorizedAccess',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  409: 'Conflict',
  412: 'PreconditionFailed',
  413: 'MessageTooLarge',
  415: 'UnsupportedMediaType',
  429: 'ThrottlingException',
  500: 'ServerError',
  503: 'ServiceUnavailable',
};

export function iotHubErrorCode(error: DpsError): string {
  return CODE_BY_ERROR[error.errorCode] ?? CODE_BY_STATUS[error.status] ?? 'ServerError';
}

/** The IoT Hub error body: `{"Message":"ErrorCode:X;message","ExceptionMessage":"Tracking ID:…"}`. */
export function iotHubErrorBody(error: DpsError): { Message: string; ExceptionMessage: string } {
  // A `;` inside the message would cut it short in the SDK's `Message.split(';')`.
  const message = error.message.replace(/;/g, ',');
  return {
    Message: `ErrorCode:${iotHubErrorCode(error)};${message}`,
    ExceptionMessage: `Tracking ID:${error.trackingId}-TimeStamp:${error.timestampUtc}`,
  };
}

export function sendIotHubError(res: ServerResponse, error: DpsError): void {
  writeJson(res, error.status, iotHubErrorBody(error), {
    'iothub-errorcode': iotHubErrorCode(error),
    'x-ms-request-id': error.trackingId,
  });
}
