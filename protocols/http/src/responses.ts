import type { ServerResponse } from 'node:http';
import { writeJson, type DpsError } from '@opendps/model';
import { isTpmChallengeError } from '@opendps/registration';

/**
 * The DPS error body. This is the one place where the TPM challenge will go: real DPS answers the
 * first TPM PUT with 401 and `authenticationKey` + `keyName` at the top level of this body (docs/device-wire.md, trap 8;
 * Node needs exactly 401 and a string `authenticationKey`, the C SDK needs `keyName`).
 */
export function errorBody(error: DpsError): object {
  if (isTpmChallengeError(error)) {
    const { message, ...rest } = error.toJSON();
    return { authenticationKey: error.authenticationKey, keyName: error.keyName, message, ...rest };
  }
  return error.toJSON();
}

/**
 * The HTTP form of a coded error: its status, its body, `x-ms-error-code` and `x-ms-request-id`, and
 * `retry-after` when the error says when to come back (throttling, docs/service-rest.md §15).
 */
export function writeError(res: ServerResponse, error: DpsError, headers: Record<string, string> = {}): void {
  const retryAfter = error.info?.['retry-after'];
  writeJson(res, error.status, errorBody(error), {
    ...headers,
    ...(retryAfter ? { 'retry-after': retryAfter } : {}),
    'x-ms-error-code': String(error.errorCode),
    'x-ms-request-id': error.trackingId,
  });
}
