import {
  assertDeviceId,
  assertSymmetricKey,
  Errors,
  isDpsError,
  utcNow,
  type TwinCollection,
} from '@opendps/model';
import type { Collection, Store } from '@opendps/store';
import type { HubAuthentication, HubDevice, HubDeviceIdentity } from './connector';
import {
  assertSectionSize,
  emptyTwin,
  isCollection,
  mergePatch,
  validateSection,
  type StoredTwin,
} from './twin';

/** One device of a built-in hub, as stored in `(hubName, 'devices')`. */
export interface DeviceDocument {
  identity: HubDeviceIdentity;
  twin: StoredTwin;
  /** Changes when the device is deleted and created again (IoT Hub's `generationId`). */
  generationId: string;
  lastUpdatedUtc: string;
}

export interface TwinSections {
  tags?: TwinCollection;
  desired?: TwinCollection;
  reported?: TwinCollection;
}

/**
 * A condition checked against the current document (undefined: no device) inside each
 * compare-and-set attempt, so an If-Match cannot race the write; it throws a DpsError to refuse.
 */
export type DevicePrecondition = (current: DeviceDocument | undefined) => void;

/** X.509 devices are found by thumbprint (sha1 or sha256, upper-case hex; the store folds case). */
export const THUMBPRINT_INDEX = 'thumbprint';
const THUMBPRINT = /^(?:[0-9A-F]{40}|[0-9A-F]{64})$/;
/** Compare-and-set attempts before a write racing other writers gives up with 412. */
const MAX_ATTEMPTS = 10;

/**
 * A built-in hub's registry: identities and twins in the store, so every gateway node (and a
 * restart) sees the same devices. Twin writes are compare-and-set on the document's etag, so a
 * device's reported patch and an operator's desired patch never lose each other.
 */
export class DeviceRegistry {
  private readonly devices: Collection<DeviceDocument>;

  constructor(store: Store, hubName: string) {
    this.devices = store.collection<DeviceDocument>(hubName, 'devices');
  }

  async get(deviceId: string): Promise<DeviceDocument | undefined> {
    return (await this.devices.get(deviceId))?.value;
  }

  async findByThumbprint(thumbprint: string): Promise<DeviceDocument[]> {
    return (await this.devices.findByIndex(THUMBPRINT_INDEX, thumbprint.toUpperCase())).map((doc) => doc.value);
  }

  count(): Promise<number> {
    return this.devices.count();
  }

  /**
   * Creates or replaces the identity; replaces only the twin sections given. Returns before and after.
   * `hint.absent` (the caller just found no such device): the first attempt is a create without a
   * read, conditional on there being none (`ifNoneMatch`); a device created meanwhile makes it fail,
   * and the usual read-then-compare-and-set follows.
   */
  async upsert(
    identity: HubDeviceIdentity,
    sections: TwinSections = {},
    precondition?: DevicePrecondition,
    hint?: { absent?: boolean },
  ): Promise<{ previous?: DeviceDocument; current: DeviceDocument }> {
    const checked = validateIdentity(identity);
    const tags = sections.tags === undefined ? undefined : validateSection(sections.tags, 'tags', false);
    const desired = sections.desired === undefined ? undefined : validateSection(sections.desired, 'desired properties', false);
    const reported = sections.reported === undefined ? undefined : validateSection(sections.reported, 'reported properties', false);
    if (desired) assertSectionSize(desired, 'desired properties');
    if (reported) assertSectionSize(reported, 'reported properties');
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const existing = attempt === 0 && hint?.absent ? undefined : await this.devices.get(checked.deviceId);
      const previous = existing?.value;
      precondition?.(previous);
      const twin: StoredTwin = previous ? { ...previous.twin } : emptyTwin();
      if (tags) twin.tags = tags;
      if (desired) {
        twin.desired = desired;
        if (previous) twin.desiredVersion += 1;
      }
      if (reported) {
        twin.reported = reported;
        if (previous) twin.reportedVersion += 1;
      }
      const current: DeviceDocument = {
        identity: checked,
        twin,
        generationId: previous?.generationId ?? newGenerationId(),
        lastUpdatedUtc: utcNow(),
      };
      try {
        await this.devices.put(checked.deviceId, current, {
          ...(existing ? { ifMatch: existing.etag } : { ifNoneMatch: '*' as const }),
          indexes: indexesOf(checked),
        });
        return { ...(previous ? { previous } : {}), current };
      } catch (error) {
        if (!isRace(error)) throw error;
      }
    }
    throw Errors.preconditionFailed(`Device '${checked.deviceId}' is being changed concurrently.`);
  }

  /** Deletes the device; with a precondition, only while it holds (checked under compare-and-set). */
  async delete(deviceId: string, precondition?: DevicePrecondition): Promise<boolean> {
    if (!precondition) return this.devices.delete(deviceId);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const existing = await this.devices.get(deviceId);
      precondition(existing?.value);
      if (!existing) return false;
      try {
        return await this.devices.delete(deviceId, { ifMatch: existing.etag });
      } catch (error) {
        if (!isRace(error)) throw error;
      }
    }
    throw Errors.preconditionFailed(`Device '${deviceId}' is being changed concurrently.`);
  }

  /** One page of devices, ordered by id (`continuation` as the previous page returned it). */
  async list(options: { pageSize?: number; continuation?: string } = {}): Promise<{ devices: DeviceDocument[]; continuation?: string }> {
    const page = await this.devices.list(options);
    return { devices: page.items.map((doc) => doc.value), ...(page.continuation ? { continuation: page.continuation } : {}) };
  }

  /** Merge-patches tags and desired properties together (a service twin PATCH). */
  async patchTwin(
    deviceId: string,
    patch: { tags?: unknown; desired?: unknown },
    precondition?: DevicePrecondition,
  ): Promise<DeviceDocument> {
    const tags = patch.tags === undefined ? undefined : validateSection(patch.tags, 'tags patch', true);
    const desiredPatch = patch.desired === undefined ? undefined : validateSection(patch.desired, 'desired properties patch', true);
    return this.mutate(
      deviceId,
      (twin) => {
        const next = { ...twin };
        if (tags) {
          next.tags = mergePatch(twin.tags, tags);
          assertSectionSize(next.tags, 'tags');
        }
        if (desiredPatch) {
          next.desired = mergePatch(twin.desired, desiredPatch);
          assertSectionSize(next.desired, 'desired properties');
          next.desiredVersion = twin.desiredVersion + 1;
        }
        return next;
      },
      precondition,
    );
  }

  /** Merge-patches the desired properties; returns the new document and the patch to notify. */
  async patchDesired(deviceId: string, patch: unknown): Promise<DeviceDocument> {
    const checked = validateSection(patch, 'desired properties patch', true);
    return this.mutate(deviceId, (twin) => {
      const desired = mergePatch(twin.desired, checked);
      assertSectionSize(desired, 'desired properties');
      return { ...twin, desired, desiredVersion: twin.desiredVersion + 1 };
    });
  }

  /** Merge-patches the reported properties (a device's PATCH). */
  async patchReported(deviceId: string, patch: unknown): Promise<DeviceDocument> {
    const checked = validateSection(patch, 'reported properties patch', true);
    return this.mutate(deviceId, (twin) => {
      const reported = mergePatch(twin.reported, checked);
      assertSectionSize(reported, 'reported properties');
      return { ...twin, reported, reportedVersion: twin.reportedVersion + 1 };
    });
  }

  private async mutate(
    deviceId: string,
    change: (twin: StoredTwin) => StoredTwin,
    precondition?: DevicePrecondition,
  ): Promise<DeviceDocument> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const existing = await this.devices.get(deviceId);
      if (!existing) throw Errors.deviceNotFound(`Device '${deviceId}' is not registered on this hub.`);
      precondition?.(existing.value);
      const current: DeviceDocument = { ...existing.value, twin: change(existing.value.twin), lastUpdatedUtc: utcNow() };
      try {
        await this.devices.put(deviceId, current, { ifMatch: existing.etag, indexes: indexesOf(current.identity) });
        return current;
      } catch (error) {
        if (!isRace(error)) throw error;
      }
    }
    throw Errors.preconditionFailed(`Device '${deviceId}' is being changed concurrently.`);
  }
}

/** The registry document as the HubConnector interface shows it (sections carry their `$version`). */
export function toHubDevice(doc: DeviceDocument): HubDevice {
  return {
    identity: doc.identity,
    twin: {
      tags: doc.twin.tags,
      properties: {
        desired: { ...doc.twin.desired, $version: doc.twin.desiredVersion },
        reported: { ...doc.twin.reported, $version: doc.twin.reportedVersion },
      },
    },
  };
}

export function validateIdentity(identity: unknown): HubDeviceIdentity {
  if (!isCollection(identity)) throw Errors.invalidField('The device identity must be an object.');
  const deviceId = assertDeviceId(identity.deviceId);
  const status = identity.status ?? 'enabled';
  if (status !== 'enabled' && status !== 'disabled') throw Errors.invalidField("status is 'enabled' or 'disabled'.");
  const capabilities = identity.capabilities;
  const iotEdge = isCollection(capabilities) ? capabilities.iotEdge ?? false : false;
  if (typeof iotEdge !== 'boolean') throw Errors.invalidField('capabilities.iotEdge must be a boolean.');
  return { deviceId, authentication: validateAuthentication(identity.authentication), status, capabilities: { iotEdge } };
}

function validateAuthentication(value: unknown): HubAuthentication {
  if (!isCollection(value)) throw Errors.invalidField('The device authentication must be an object.');
  if (value.type === 'sas') {
    const keys = isCollection(value.symmetricKey) ? value.symmetricKey : {};
    return {
      type: 'sas',
      symmetricKey: {
        primaryKey: assertSymmetricKey(keys.primaryKey, 'primary key'),
        secondaryKey: assertSymmetricKey(keys.secondaryKey, 'secondary key'),
      },
    };
  }
  if (value.type === 'selfSigned') {
    const prints = isCollection(value.x509Thumbprint) ? value.x509Thumbprint : {};
    const primaryThumbprint = checkThumbprint(prints.primaryThumbprint, 'primary');
    const secondaryThumbprint =
      prints.secondaryThumbprint === undefined || prints.secondaryThumbprint === null || prints.secondaryThumbprint === ''
        ? undefined
        : checkThumbprint(prints.secondaryThumbprint, 'secondary');
    return { type: 'selfSigned', x509Thumbprint: { primaryThumbprint, ...(secondaryThumbprint ? { secondaryThumbprint } : {}) } };
  }
  throw Errors.invalidField("authentication.type is 'sas' or 'selfSigned'.");
}

function checkThumbprint(value: unknown, which: string): string {
  const normalized = typeof value === 'string' ? value.replace(/:/g, '').toUpperCase() : '';
  if (!THUMBPRINT.test(normalized)) throw Errors.invalidField(`The ${which} thumbprint must be SHA-1 or SHA-256 hex.`);
  return normalized;
}

function indexesOf(identity: HubDeviceIdentity): Record<string, string[]> {
  if (identity.authentication.type !== 'selfSigned') return {};
  const { primaryThumbprint, secondaryThumbprint } = identity.authentication.x509Thumbprint;
  return { [THUMBPRINT_INDEX]: secondaryThumbprint ? [primaryThumbprint, secondaryThumbprint] : [primaryThumbprint] };
}

function isRace(error: unknown): boolean {
  return isDpsError(error) && (error.status === 412 || error.status === 409);
}

function newGenerationId(): string {
  return `${Date.now()}${Math.floor(Math.random() * 1e6).toString().padStart(6, '0')}`;
}
