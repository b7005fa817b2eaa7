import { randomBytes } from 'node:crypto';
import {
  allocate,
  allocationPolicyOf,
  candidateHubs,
  reprovision,
  type LatencySource,
  type RuntimeAttestation,
  type WebhookClient,
} from '@opendps/allocation';
import { deriveDeviceKey, tpm } from '@opendps/attestation';
import type { HubConnector, HubDevice, HubDeviceIdentity } from '@opendps/hub';
import {
  Errors,
  isDpsError,
  isEnrollmentGroup,
  type DeviceRegistrationState,
  type InitialTwin,
  type ProvisioningInstance,
  type TwinCollection,
} from '@opendps/model';
import { registrations, type Store } from '@opendps/store';
import type { Attestation } from './attest';
import type { HubDirectory } from './hubs';
import { because } from './refusal';
import { settleTpmHubKey } from './tpm';
import type { AssignmentDecision } from './trace';

export interface AssignContext {
  store: Store;
  instance: ProvisioningInstance;
  hubs: HubDirectory;
  attestation: Attestation;
  /** The device's registration payload (for a custom allocation webhook). */
  payload?: unknown;
  /** The device's source address (for lowest-latency allocation). */
  clientAddress?: string;
  latency?: LatencySource;
  webhook?: WebhookClient;
  /** How long a TPM device's chosen hub key stays settled for every node (default 1800 s, see tpm.ts). */
  tpmHubKeyTtlSeconds?: number;
  /** Told what allocation and reprovisioning decided, before any hub is touched (the registration trace). */
  decided?: (decision: AssignmentDecision) => void;
}

/** The device's new registration state (what the answer carries), and its write, issued. */
export interface Assignment {
  registrationState: DeviceRegistrationState;
  written: Promise<unknown>;
}

/**
 * Steps 5 and 6 of the flow: allocate a hub by the enrollment's policy, apply its reprovisioning
 * policy (first assignment, keep, migrate the device's data, or reset it to the initial twin), create
 * or update the identity on the hub, and issue the registration's record. Idempotent: running it twice for
 * the same device leaves the same state, so any node may redo it.
 */
export async function assign(context: AssignContext): Promise<Assignment> {
  const { store, instance, hubs, attestation } = context;
  const { attested, enrollment } = attestation;
  const records = registrations(store, instance.idScope);
  // A group device's state was read by its attestation already (the group it came through).
  const previous = attestation.previousState ? attestation.previousState.value : await records.get(attested.registrationId);
  const current = previous?.status === 'assigned' && previous.assignedHub ? previous : undefined;

  const candidates = candidateHubs(instance, enrollment);
  const policy = allocationPolicyOf(instance, enrollment);
  const allocation = await allocate({
    instance,
    enrollment,
    registrationId: attested.registrationId,
    candidates,
    ...(current?.assignedHub ? { current: { hubHostName: current.assignedHub, ...(current.deviceId ? { deviceId: current.deviceId } : {}) } } : {}),
    ...(context.payload !== undefined ? { payload: context.payload } : {}),
    attestation: runtimeAttestation(attestation),
    ...(context.clientAddress ? { clientAddress: context.clientAddress } : {}),
    ...(context.latency ? { latency: context.latency } : {}),
    ...(context.webhook ? { webhook: context.webhook } : {}),
  }).catch((error: unknown) => {
    // Whatever goes wrong inside a custom allocation is the webhook's (a missing definition aside).
    throw policy === 'custom' && (error as { errorCode?: number }).errorCode !== 400012 ? because('webhookFailed', error) : error;
  });
  const decision = reprovision({
    allocated: allocation.hub,
    linkedHubs: instance.linkedHubs,
    ...(current?.assignedHub ? { current: { hubHostName: current.assignedHub, ...(current.substatus ? { substatus: current.substatus } : {}) } } : {}),
    ...(enrollment.reprovisionPolicy ? { policy: enrollment.reprovisionPolicy } : {}),
    initialTwinOverride: allocation.initialTwin !== undefined,
  });
  context.decided?.({
    policy: allocation.policy,
    candidates: candidates.map((hub) => ({ name: hub.name, hostName: hub.hostName, allocationWeight: hub.allocationWeight })),
    chosen: { name: allocation.hub.name, hostName: allocation.hub.hostName },
    why: allocation.why,
    reprovision: {
      action: decision.action,
      substatus: decision.substatus,
      ...(decision.from ? { from: decision.from.name } : {}),
      ...(enrollment.reprovisionPolicy ? { policy: enrollment.reprovisionPolicy } : {}),
    },
  });

  const target = hubs.connector(decision.hub);
  const source = decision.from ? hubs.connector(decision.from) : undefined;
  // Where the device's data lives now: the old hub when moving, else the target (a re-run after a
  // completed move finds it there).
  const existing = (source ? await source.getDevice(attested.deviceId) : undefined) ?? (await target.getDevice(attested.deviceId));
  const identity = await settledTpmKey(context, hubIdentity(attestation, existing?.identity));
  // The second blob (docs/device-wire.md, trap 15): the hub key K2, which only this TPM can import. Built before the hub
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

  const initialTwin = allocation.initialTwin ?? enrollment.initialTwin;
  // Nothing found where it was looked for: the hub may create without reading again.
  await target.upsertDevice(identity, twinToWrite(decision.action, existing, initialTwin), existing ? undefined : { absent: true });
  if (source && source !== target) await removeFrom(source, attested.deviceId);

  const groupId = isEnrollmentGroup(enrollment) ? enrollment.enrollmentGroupId : undefined;
  // The state is issued only now, after the hub has the device: a state saying `assigned` never
  // names a hub without it. Not awaited here: the caller issues the trace and the operation record
  // in the same turn and awaits the three together (docs/scale.md "Store round trips").
  const { stored, written } = records.putAlongside({
    registrationId: attested.registrationId,
    ...(previous?.createdDateTimeUtc ? { createdDateTimeUtc: previous.createdDateTimeUtc } : {}),
    assignedHub: target.hostName,
    deviceId: identity.deviceId,
    status: 'assigned',
    substatus: decision.substatus,
    ...(allocation.payload !== undefined ? { payload: allocation.payload } : {}),
    ...(attested.attestationType === 'symmetricKey' ? { symmetricKey: groupId ? { enrollmentGroupId: groupId } : {} } : {}),
    ...(attested.x509 ? { x509: x509Details(attestation, groupId) } : {}),
  });
  return { registrationState: tpmBlob ? { ...stored, tpm: { authenticationKey: tpmBlob } } : stored, written };
}

/** A TPM device's identity carries the K2 settled in the store, whichever node chose it (tpm.ts). */
async function settledTpmKey(context: AssignContext, identity: HubDeviceIdentity): Promise<HubDeviceIdentity> {
  const { attested } = context.attestation;
  if (attested.attestationType !== 'tpm' || identity.authentication.type !== 'sas') return identity;
  const symmetricKey = await settleTpmHubKey(
    context.store,
    context.instance.idScope,
    attested.registrationId,
    identity.authentication.symmetricKey,
    context.tpmHubKeyTtlSeconds,
  );
  return { ...identity, authentication: { type: 'sas', symmetricKey } };
}

/**
 * What the target hub's twin becomes (docs/service-rest.md §13): a new device gets the initial twin; a
 * migration carries tags, desired and reported properties over; a reset replaces them with the
 * initial twin; a device that stays keeps its twin untouched.
 */
function twinToWrite(
  action: 'initial' | 'keep' | 'migrate' | 'reset',
  existing: HubDevice | undefined,
  initialTwin: InitialTwin | undefined,
): { tags?: TwinCollection; desired?: TwinCollection; reported?: TwinCollection } | undefined {
  const initial = { tags: initialTwin?.tags ?? {}, desired: initialTwin?.properties?.desired ?? {} };
  if (action === 'reset') return { ...initial, reported: {} };
  if (!existing) return initial;
  if (action === 'migrate') return { tags: existing.twin.tags, desired: existing.twin.properties.desired, reported: existing.twin.properties.reported };
  return undefined;
}

/** The old hub may already have lost the device (a re-run after a completed move): that is fine. */
async function removeFrom(hub: HubConnector, deviceId: string): Promise<void> {
  try {
    await hub.deleteDevice(deviceId);
  } catch (error) {
    if (!(isDpsError(error) && error.status === 404)) throw error;
  }
}

function x509Details({ attested }: Attestation, groupId: string | undefined): NonNullable<DeviceRegistrationState['x509']> {
  const x509 = attested.x509;
  if (!x509) throw Errors.internal('No X.509 details for an X.509 registration.');
  return {
    certificateInfo: x509.certificateInfo,
    ...(groupId ? { enrollmentGroupId: groupId } : {}),
    ...(x509.signingCertificateInfo ? { signingCertificateInfo: x509.signingCertificateInfo } : {}),
  };
}

/** What a custom allocation webhook is told of the device's attestation (docs/service-rest.md §12). */
function runtimeAttestation({ attested, enrollment }: Attestation): RuntimeAttestation {
  if (attested.attestationType === 'x509') {
    return { type: 'x509', x509: x509Details({ attested, enrollment }, isEnrollmentGroup(enrollment) ? enrollment.enrollmentGroupId : undefined) };
  }
  if (attested.attestationType === 'tpm' && attested.tpm) return { type: 'tpm', tpm: attested.tpm };
  return { type: 'symmetricKey' };
}

/**
 * The identity the device will use at its hub: the enrollment's key, the group-derived key, its
 * certificate, or for TPM a symmetric key the service picks (K2, docs/tpm.md §5). A TPM
 * device that already has keys at this hub keeps them, so its hub identity stays valid; either way
 * the key is only a candidate until settled in the store (settledTpmKey).
 */
export function hubIdentity({ attested, enrollment, derivedKeys }: Attestation, existing?: HubDeviceIdentity): HubDeviceIdentity {
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
    ? (derivedKeys ?? {
        primaryKey: deriveDeviceKey(keys.primaryKey, attested.registrationId),
        secondaryKey: deriveDeviceKey(keys.secondaryKey, attested.registrationId),
      })
    : { primaryKey: keys.primaryKey, secondaryKey: keys.secondaryKey };
  return { ...base, authentication: { type: 'sas', symmetricKey } };
}
