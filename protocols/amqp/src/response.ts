import type { DpsError } from '@opendps/model';
import { DEFAULT_RETRY_AFTER_SECONDS } from './options';
import { dataSection, sameTypeId, type AmqpError, type AmqpMessage } from './rhea';
import type { AmqpResponse } from './exchange';

/**
 * The response message (docs/device-wire.md, trap 9): the request's correlation_id in its own type, a Data section of
 * UTF-8 JSON, and `retry-after` (Node) and `Retry-After` (C#) in seconds while assigning.
 */
export function responseMessage(correlationId: unknown, response: AmqpResponse): AmqpMessage {
  const retry = response.retryAfterSeconds;
  return {
    ...(correlationId === undefined || correlationId === null ? {} : { correlation_id: sameTypeId(correlationId) }),
    content_type: 'application/json',
    content_encoding: 'utf-8',
    ...(retry === undefined ? {} : { application_properties: { 'retry-after': retry, 'Retry-After': retry } }),
    body: dataSection(Buffer.from(JSON.stringify(response.body), 'utf8')),
  };
}

/** Node retries exactly these two conditions, after `info["retry-after"]` seconds (docs/device-wire.md, trap 5). */
export const THROTTLED = 'com.microsoft:device-container-throttled';
export const INTERNAL_ERROR = 'amqp:internal-error';

/**
 * A DpsError as the rejection of the request delivery: the DPS error body as description, and a
 * condition that azure-iot-amqp-base translates to the matching error class. Only 429 and 5xx are
 * retryable; every other condition fails `register()` (docs/device-wire.md §3, §6).
 */
export function rejection(error: DpsError): AmqpError {
  const description = JSON.stringify(error.toJSON());
  if (error.status === 429 || error.status >= 500) {
    const retryAfter = retryAfterOf(error) ?? DEFAULT_RETRY_AFTER_SECONDS;
    return { condition: error.status === 429 ? THROTTLED : INTERNAL_ERROR, description, info: { ...error.info, 'retry-after': retryAfter } };
  }
  return { condition: fatalCondition(error.status), description, ...(error.info ? { info: { ...error.info } } : {}) };
}

/**
 * A DpsError refusing a connection when it opens (`refuseOpen`): the condition a rejection of the
 * same error gets, and `info` always present (DPS sends `{}`). Only for errors the SDK must not retry.
 */
export function openRefusal(error: DpsError): AmqpError {
  return { condition: fatalCondition(error.status), description: JSON.stringify(error.toJSON()), info: { ...error.info } };
}

function fatalCondition(status: number): string {
  switch (status) {
    case 401:
    case 403:
      return 'amqp:unauthorized-access';
    case 404:
      return 'amqp:not-found';
    case 412:
      return 'com.microsoft:precondition-failed';
    case 413:
      return 'amqp:link:message-size-exceeded';
    case 400:
    case 415:
      return 'com.microsoft:argument-error';
    default:
      return 'amqp:not-allowed';
  }
}

/** Convention: a retryable DpsError carries `info['retry-after']`, in whole seconds. */
function retryAfterOf(error: DpsError): number | undefined {
  const value = error.info?.['retry-after'];
  return value !== undefined && /^\d{1,6}$/.test(value) ? Number(value) : undefined;
}
