import { deriveDeviceKey, parseSasToken, signatureMatches, verifySasToken } from '@opendps/attestation';
import {
  Errors,
  type EnrollmentGroup,
  type IndividualEnrollment,
  type X509CertificateInfo,
} from '@opendps/model';
import { enrollmentGroups, enrollments, type Store } from '@opendps/store';
import type { Proof } from './types';

/** Who a device proved to be: enough to finish its registration on any node. Holds no secrets. */
export interface AttestedDevice {
  registrationId: string;
  deviceId: string;
  enrollment: { kind: 'individual'; registrationId: string } | { kind: 'group'; enrollmentGroupId: string };
  attestationType: 'symmetricKey' | 'x509' | 'tpm';
  x509?: {
    /** Upper-case SHA-256 thumbprint of the leaf: the device's identity at the hub. */
    thumbprint: string;
    certificateInfo: X509CertificateInfo;
    signingCertificateInfo?: X509CertificateInfo;
  };
}

export interface Attestation {
  attested: AttestedDevice;
  enrollment: IndividualEnrollment | EnrollmentGroup;
}

export interface AttestContext {
  store: Store;
  idScope: string;
  registrationId: string;
  now: Date;
}

/** Step 4 of the flow: find the enrollment that matches the device and verify its proof. */
export async function attest(context: AttestContext, proof: Proof): Promise<Attestation> {
  switch (proof.kind) {
    case 'sas':
      return attestSymmetricKey(context, proof.token);
    case 'x509':
      throw Errors.invalidClientCertificate('X.509 attestation is not available yet.');
    case 'tpm':
      throw Errors.unauthorized('TPM attestation is not available yet.');
    default:
      throw Errors.unauthorized('The device presented no credentials: a SAS token or a client certificate is required.');
  }
}

/**
 * Symmetric keys: the individual enrollment of that registration id first, then the symmetric-key
 * groups, whose per-device keys are derived from the group keys (service-api.md §14). The proof is
 * verified before anything about the enrollment (disabled or not) is revealed.
 */
async function attestSymmetricKey(context: AttestContext, token: string): Promise<Attestation> {
  const { store, idScope, registrationId, now } = context;
  const sas = parseSasToken(token);
  const expectedResource = `${idScope}/registrations/${registrationId}`;

  const individual = await enrollments(store, idScope).get(registrationId);
  if (individual) {
    const keys = individual.attestation.symmetricKey;
    if (!keys) throw Errors.invalidSignature('The enrollment of this registration id does not use symmetric keys.');
    verifySasToken(sas, { expectedResource, keys: [keys.primaryKey, keys.secondaryKey], now });
    return {
      enrollment: individual,
      attested: {
        registrationId,
        deviceId: individual.deviceId ?? registrationId,
        enrollment: { kind: 'individual', registrationId: individual.registrationId },
        attestationType: 'symmetricKey',
      },
    };
  }

  const groups = await enrollmentGroups(store, idScope).findByAttestationType('symmetricKey');
  groups.sort((a, b) => a.enrollmentGroupId.localeCompare(b.enrollmentGroupId));
  for (const group of groups) {
    const groupKeys = group.attestation.symmetricKey;
    if (!groupKeys) continue;
    const keys = [deriveDeviceKey(groupKeys.primaryKey, registrationId), deriveDeviceKey(groupKeys.secondaryKey, registrationId)];
    if (!keys.some((key) => signatureMatches(sas, key))) continue;
    verifySasToken(sas, { expectedResource, keys, now });
    return {
      enrollment: group,
      attested: {
        registrationId,
        deviceId: registrationId,
        enrollment: { kind: 'group', enrollmentGroupId: group.enrollmentGroupId },
        attestationType: 'symmetricKey',
      },
    };
  }
  throw Errors.invalidSignature();
}
