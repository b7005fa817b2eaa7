import { parseSasToken, signatureMatches, verifySasToken, type SasToken } from '@opendps/attestation';
import { Errors, type AccessRight, type ProvisioningInstance, type SharedAccessPolicy } from '@opendps/model';

/** Who is calling: the instance whose policy key signed the token, and that policy. */
export interface Principal {
  instance: ProvisioningInstance;
  policy: SharedAccessPolicy;
}

/**
 * Service SAS (docs/service-rest.md §8). Several instances share the listener and each has its own keys,
 * so the instance is the one whose policy named by `skn` verifies the signature. Then `sr`, decoded,
 * must be a path-segment prefix of `{serviceHostName}/{path}`, and the token must not have expired.
 */
export function authenticate(
  authorization: string | undefined,
  instances: readonly ProvisioningInstance[],
  pathname: string,
  now?: Date,
): Principal {
  if (!authorization) throw Errors.unauthorized('The Authorization header with a SharedAccessSignature is required.');
  const token = parseSasToken(authorization);
  if (!token.keyName) throw Errors.malformedToken('A service SAS token names its policy in skn.');
  const principal = findSigner(token, instances);
  if (!principal) throw Errors.invalidSignature();
  const { instance, policy } = principal;
  verifySasToken(token, {
    expectedResource: `${instance.serviceHostName}/${decodedPath(pathname)}`,
    keys: [policy.primaryKey, policy.secondaryKey],
    prefixMatch: true,
    ...(now ? { now } : {}),
  });
  return principal;
}

export function authorize(principal: Principal, right: AccessRight): void {
  if (!principal.policy.rights.includes(right)) {
    throw Errors.insufficientRights(`The policy '${principal.policy.keyName}' does not grant ${right}.`);
  }
}

function findSigner(token: SasToken, instances: readonly ProvisioningInstance[]): Principal | undefined {
  for (const instance of instances) {
    for (const policy of instance.policies) {
      if (policy.keyName !== token.keyName) continue;
      if (signatureMatches(token, policy.primaryKey) || signatureMatches(token, policy.secondaryKey)) {
        return { instance, policy };
      }
    }
  }
  return undefined;
}

function decodedPath(pathname: string): string {
  const path = (pathname.split('?')[0] ?? '').replace(/^\/+/, '').replace(/\/+$/, '');
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}
