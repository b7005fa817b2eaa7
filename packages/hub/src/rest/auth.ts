import { parseSasToken, verifySasToken } from '@opendps/attestation';
import { Errors, isDpsError } from '@opendps/model';
import type { AccessPolicy } from '../access-policy';

export interface ServiceAuthContext {
  /** The hub's `host:port` names; `sr` must be a path-segment prefix of one of them plus the path. */
  hostNames: readonly string[];
  policy: AccessPolicy;
  now?: Date;
}

/**
 * Service SAS on the hub's REST API (the `iothubowner` policy). azure-iothub sends `sr` = the raw
 * `HostName` (here with its port), `skn` = the policy and a fresh `se` on every request; `sr` is
 * compared decoded and case-insensitively as a path-segment prefix of `{hostName}/{path}`.
 */
export function authenticateService(authorization: string | undefined, pathname: string, context: ServiceAuthContext): void {
  if (!authorization) throw Errors.unauthorized('The Authorization header with a SharedAccessSignature is required.');
  const token = parseSasToken(authorization);
  if (token.keyName !== context.policy.keyName) {
    throw Errors.unauthorized(`The token must be signed with the '${context.policy.keyName}' policy.`);
  }
  const path = decodedPath(pathname);
  let lastError: unknown;
  for (const hostName of context.hostNames) {
    try {
      verifySasToken(token, {
        expectedResource: path ? `${hostName}/${path}` : hostName,
        keys: [context.policy.primaryKey, context.policy.secondaryKey],
        prefixMatch: true,
        ...(context.now ? { now: context.now } : {}),
      });
      return;
    } catch (error) {
      // Only the resource depends on the host name; any other failure is final.
      if (!isDpsError(error) || error.errorCode !== Errors.wrongResource().errorCode) throw error;
      lastError = error;
    }
  }
  throw lastError ?? Errors.wrongResource();
}

function decodedPath(pathname: string): string {
  const path = pathname.replace(/^\/+/, '').replace(/\/+$/, '');
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}
