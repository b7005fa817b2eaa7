import { checkTwinSection, Errors, TWIN_LIMITS, type TwinCollection } from '@opendps/model';

/**
 * Twin documents as IoT Hub keeps them: tags (service-only), desired and reported properties, each
 * properties section with its own `$version` that grows by one on every change.
 */
export interface StoredTwin {
  tags: TwinCollection;
  desired: TwinCollection;
  reported: TwinCollection;
  desiredVersion: number;
  reportedVersion: number;
}

export function emptyTwin(): StoredTwin {
  return { tags: {}, desired: {}, reported: {}, desiredVersion: 1, reportedVersion: 1 };
}

export function isCollection(value: unknown): value is TwinCollection {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Checks a section or a patch written by a device or the service, with IoT Hub's limits as
 * enrollments' initial twins are checked (model twin-limits). The top-level `$version` and
 * `$metadata` that clients echo back are dropped (the hub owns them); any other `$` key is refused.
 * `allowNull` admits merge-patch deletions.
 */
export function validateSection(value: unknown, what: string, allowNull: boolean): TwinCollection {
  if (!isCollection(value)) throw Errors.invalidField(`The ${what} must be a JSON object.`);
  const { $version: _version, $metadata: _metadata, ...rest } = value;
  checkTwinSection(rest, { field: what, maxBytes: Infinity, allowNull, dollarKeys: 'refuse', invalid: (detail) => Errors.invalidField(`The ${what}: ${detail}`) });
  return rest;
}

/** RFC 7396 JSON merge patch: objects merge, null deletes, anything else replaces. Never mutates. */
export function mergePatch(target: TwinCollection, patch: TwinCollection): TwinCollection {
  const result: TwinCollection = { ...target };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else if (isCollection(value)) {
      const current = result[key];
      result[key] = mergePatch(isCollection(current) ? current : {}, value);
    } else result[key] = value;
  }
  return result;
}

/** A whole section after a patch is merged: 413 past IoT Hub's 32 KB (8 KB for tags). */
export function assertSectionSize(section: TwinCollection, what: string): void {
  const maxBytes = what === 'tags' ? TWIN_LIMITS.tagsBytes : TWIN_LIMITS.desiredBytes;
  checkTwinSection(section, {
    field: what,
    maxBytes,
    tooLarge: () => Errors.payloadTooLarge(`The ${what} exceed ${maxBytes / 1024} KB.`),
    invalid: (detail) => Errors.invalidField(`The ${what}: ${detail}`),
  });
}

/** The twin as the device sees it (`GET`): no tags, each section with its `$version`. */
export function deviceView(twin: StoredTwin): { desired: TwinCollection; reported: TwinCollection } {
  return {
    desired: { ...twin.desired, $version: twin.desiredVersion },
    reported: { ...twin.reported, $version: twin.reportedVersion },
  };
}
