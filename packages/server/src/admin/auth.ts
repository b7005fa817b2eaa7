import { parseSasToken, signatureMatches, verifySasToken } from '@opendps/attestation';
import { Errors, type ProvisioningInstance, type SharedAccessPolicy } from '@opendps/model';

/** Who calls the admin API: the deployment admin, or one instance through a policy with ServiceConfig. */
export type AdminCaller = { kind: 'admin' } | { kind: 'instance'; instance: ProvisioningInstance };

/**
 * Service SAS as the service API verifies it (docs/service-rest.md §8): `skn` names the admin policy or an
 * instance policy whose key verifies the signature; `sr` must be a segment prefix of `host/path`.
 * An instance policy must grant ServiceConfig.
 */
export function authenticateAdmin(
  authorization: string | undefined,
  options: { host: string; adminPolicy: SharedAccessPolicy; instances: readonly ProvisioningInstance[]; pathname: string },
): AdminCaller {
  if (!authorization) throw Errors.unauthorized('The Authorization header with a SharedAccessSignature is required.');
  const token = parseSasToken(authorization);
  if (!token.keyName) throw Errors.malformedToken('A service SAS token names its policy in skn.');
  const path = options.pathname.replace(/^\/+/, '').replace(/\/+$/, '');
  const verify = (host: string, policy: SharedAccessPolicy): void => {
    verifySasToken(token, { expectedResource: `${host}/${path}`, keys: [policy.primaryKey, policy.secondaryKey], prefixMatch: true });
  };
  const admin = options.adminPolicy;
  if (token.keyName === admin.keyName && (signatureMatches(token, admin.primaryKey) || signatureMatches(token, admin.secondaryKey))) {
    verify(options.host, admin);
    return { kind: 'admin' };
  }
  for (const instance of options.instances) {
    for (const policy of instance.policies) {
      if (policy.keyName !== token.keyName) continue;
      if (!signatureMatches(token, policy.primaryKey) && !signatureMatches(token, policy.secondaryKey)) continue;
      verify(instance.serviceHostName, policy);
      if (!policy.rights.includes('ServiceConfig')) {
        throw Errors.insufficientRights(`The policy '${policy.keyName}' does not grant ServiceConfig.`);
      }
      return { kind: 'instance', instance };
    }
  }
  throw Errors.invalidSignature();
}
