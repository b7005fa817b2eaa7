import { createHash, randomBytes } from 'node:crypto';
import { deriveDeviceKey, tpm } from '@opendps/attestation';
import type { HubDeviceIdentity } from '@opendps/hub';
import {
  Errors,
  isEnrollmentGroup,
  utcNow,
  type DeviceRegistrationState,
  type LinkedHub,
  type ProvisioningInstance,
} from '@opendps/model';
import { registrations, type Store } from '@opendps/store';
import type { Attestation } from './attest';
import type { HubDirectory } from './hubs';

export interface AssignContext {
  store: Store;
  instance: ProvisioningInstance;
  hubs: HubDirectory;
  attestation: Attestation;
}

/**
 * Steps 5 and 6 of the flow: choose the device's hub, create or update its identity there (writing
 * the enrollment's initial twin when the device is new on that hub), and record the registration.
 * Idempotent: running it twice for the same device leaves the same state, so any node may redo it.
 */
export async function assign(context: AssignContext): Promise<DeviceRegistrationState> {
  const { store, instance, hubs, attestation } = context;
  const { attested, enrollment } = attestation;
  const records = registrations(store, instance.idScope);
  const previous = await records.get(attested.registrationId);

  const hub = chooseHub(candidateHubs(instance, attestation), attested.registrationId, previous?.assignedHub);
  const connector = hubs.connector(hub);
  const existing = await connector.getDevice(attested.deviceId);
  const identity = hubIdentity(attestation, existing?.identity);
  // The second blob (trap 15): the hub key K2, which only this TPM can import. Built before the hub
  // is touched; returned with the operation, never kept in the registration record.
  const tpmBlob =
    attested.tpm && identity.authentication.type === 'sas'
      ? tpm.wrapTpmDeviceKey({
          ...attested.tpm,
          registrationId: attested.registrationId,
          idScope: instance.idScope,
          deviceKey: identity.authentication.symmetricKey.primaryKey,
        }).authenticationKey
      : undefined;
  const twin = enrollment.initialTwin;
  await connector.upsertDevice(
    identity,
    existing ? undefined : { tags: twin?.tags ?? {}, desired: twin?.properties?.desired ?? {} },
  );

  const groupId = isEnrollmentGroup(enrollment) ? enrollment.enrollmentGroupId : undefined;
  const now = utcNow();
  const recorded = await records.put({
    registrationId: attested.registrationId,
    createdDateTimeUtc: previous?.createdDateTimeUtc ?? now,
    assignedHub: connector.hostName,
    deviceId: identity.deviceId,
    status: 'assigned',
    substatus: 'initialAssignment',
    lastUpdatedDateTimeUtc: now,
    ...(attested.attestationType === 'symmetricKey' ? { symmetricKey: groupId ? { enrollmentGroupId: groupId } : {} } : {}),
    ...(attested.x509
      ? {
          x509: {
            certificateInfo: attested.x509.certificateInfo,
            ...(groupId ? { enrollmentGroupId: groupId } : {}),
            ...(attested.x509.signingCertificateInfo ? { signingCertificateInfo: attested.x509.signingCertificateInfo } : {}),
          },
        }
      : {}),
  });
  return tpmBlob ? { ...recorded, tpm: { authenticationKey: tpmBlob } } : recorded;
}

/**
 * The enrollment's hubs when it names any (host names or hub names), else every linked hub that
 * applies the allocation policy (service-api.md §11).
 */
export function candidateHubs(instance: ProvisioningInstance, { enrollment }: Attestation): LinkedHub[] {
  const named = [...(enrollment.iotHubs ?? []), ...(enrollment.iotHubHostName ? [enrollment.iotHubHostName] : [])].map(
    (name) => name.toLowerCase(),
  );
  const candidates = named.length
    ? instance.linkedHubs.filter((hub) => named.includes(hub.hostName.toLowerCase()) || named.includes(hub.name.toLowerCase()))
    : instance.linkedHubs.filter((hub) => hub.applyAllocationPolicy);
  if (candidates.length === 0) throw Errors.noHubForDevice();
  return candidates;
}

/**
 * A device keeps the hub it has while that hub is still a candidate; otherwise weighted rendezvous
 * hashing over its registration id picks one, so re-registrations are stable and a new hub takes
 * only its weighted share (score = -w / ln(u), u in (0,1) from SHA-256(registrationId, hub)).
 */
export function chooseHub(candidates: LinkedHub[], registrationId: string, currentHostName?: string): LinkedHub {
  const current = currentHostName?.toLowerCase();
  const kept = current ? candidates.find((hub) => hub.hostName.toLowerCase() === current) : undefined;
  if (kept) return kept;
  let best: LinkedHub | undefined;
  let bestScore = -Infinity;
  for (const hub of candidates) {
    const digest = createHash('sha256').update(`${registrationId.toLowerCase()}\n${hub.name}`).digest();
    const u = (Number(digest.readBigUInt64BE(0) >> 11n) + 0.5) / 2 ** 53;
    const score = -hub.allocationWeight / Math.log(u);
    if (score > bestScore) [best, bestScore] = [hub, score];
  }
  return best as LinkedHub;
}

/**
 * The identity the device will use at its hub: the enrollment's key, the group-derived key, its
 * certificate, or for TPM a symmetric key the service picks (K2, tpm-attestation.md §5). A TPM
 * device that already has keys at this hub keeps them, so its hub identity stays valid.
 */
export function hubIdentity({ attested, enrollment }: Attestation, existing?: HubDeviceIdentity): HubDeviceIdentity {
  const capabilities = { iotEdge: enrollment.capabilities?.iotEdge ?? false };
  const base = { deviceId: attested.deviceId, status: 'enabled' as const, capabilities };
  if (attested.attestationType === 'tpm') {
    const current = existing?.authentication;
    const symmetricKey =
      current?.type === 'sas'
        ? current.symmetricKey
        : { primaryKey: randomBytes(32).toString('base64'), secondaryKey: randomBytes(32).toString('base64') };
    return { ...base, authentication: { type: 'sas', symmetricKey } };
  }
  if (attested.x509) {
    return { ...base, authentication: { type: 'selfSigned', x509Thumbprint: { primaryThumbprint: attested.x509.thumbprint } } };
  }
  const keys = enrollment.attestation.symmetricKey;
  if (!keys) throw Errors.internal('The enrollment has no symmetric keys for the hub identity.');
  const symmetricKey = isEnrollmentGroup(enrollment)
    ? {
        primaryKey: deriveDeviceKey(keys.primaryKey, attested.registrationId),
        secondaryKey: deriveDeviceKey(keys.secondaryKey, attested.registrationId),
      }
    : { primaryKey: keys.primaryKey, secondaryKey: keys.secondaryKey };
  return { ...base, authentication: { type: 'sas', symmetricKey } };
}
