import { createHash } from 'node:crypto';
import type { TwinCollection } from '@opendps/model';
import type { DeviceDocument } from '../registry';

/** IoT Hub reports times it does not track as the .NET minimum date. */
const UNKNOWN_TIME = '0001-01-01T00:00:00Z';

/**
 * Etags derived from the document: the device's changes with its identity (and generation), the
 * twin's with its tags and section versions, as on IoT Hub where a twin write leaves the device etag
 * alone. Base64 like IoT Hub's; unquoted in bodies, quoted in the ETag header.
 */
export function deviceEtag(doc: DeviceDocument): string {
  return digest([doc.generationId, doc.identity]);
}

export function twinEtag(doc: DeviceDocument): string {
  const { twin } = doc;
  return digest([doc.generationId, twin.tags, twin.desiredVersion, twin.reportedVersion]);
}

function digest(parts: unknown[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest().subarray(0, 9).toString('base64');
}

/** The device as IoT Hub's registry returns it (`GET /devices/{id}`). */
export function deviceJson(doc: DeviceDocument, connected: boolean): Record<string, unknown> {
  const { identity } = doc;
  const { authentication } = identity;
  return {
    deviceId: identity.deviceId,
    moduleId: null,
    generationId: doc.generationId,
    etag: deviceEtag(doc),
    connectionState: connected ? 'Connected' : 'Disconnected',
    status: identity.status,
    statusReason: null,
    connectionStateUpdatedTime: UNKNOWN_TIME,
    statusUpdatedTime: UNKNOWN_TIME,
    lastActivityTime: UNKNOWN_TIME,
    cloudToDeviceMessageCount: 0,
    authentication: {
      symmetricKey:
        authentication.type === 'sas'
          ? { ...authentication.symmetricKey }
          : { primaryKey: null, secondaryKey: null },
      x509Thumbprint:
        authentication.type === 'selfSigned'
          ? {
              primaryThumbprint: authentication.x509Thumbprint.primaryThumbprint,
              secondaryThumbprint: authentication.x509Thumbprint.secondaryThumbprint ?? null,
            }
          : { primaryThumbprint: null, secondaryThumbprint: null },
      type: authentication.type,
    },
    capabilities: { iotEdge: identity.capabilities.iotEdge },
  };
}

/** The twin as IoT Hub's service API returns it (`GET /twins/{id}`), sections with `$metadata` and `$version`. */
export function twinJson(doc: DeviceDocument, connected: boolean): Record<string, unknown> {
  const { identity, twin } = doc;
  const { authentication } = identity;
  return {
    deviceId: identity.deviceId,
    etag: twinEtag(doc),
    deviceEtag: deviceEtag(doc),
    status: identity.status,
    statusUpdateTime: UNKNOWN_TIME,
    connectionState: connected ? 'Connected' : 'Disconnected',
    lastActivityTime: UNKNOWN_TIME,
    cloudToDeviceMessageCount: 0,
    authenticationType: authentication.type,
    x509Thumbprint:
      authentication.type === 'selfSigned'
        ? {
            primaryThumbprint: authentication.x509Thumbprint.primaryThumbprint,
            secondaryThumbprint: authentication.x509Thumbprint.secondaryThumbprint ?? null,
          }
        : { primaryThumbprint: null, secondaryThumbprint: null },
    modelId: '',
    // Tag-only writes do not move the section versions, so they do not move this either.
    version: twin.desiredVersion + twin.reportedVersion - 1,
    tags: twin.tags,
    properties: {
      desired: section(twin.desired, twin.desiredVersion, doc.lastUpdatedUtc),
      reported: section(twin.reported, twin.reportedVersion, doc.lastUpdatedUtc),
    },
    capabilities: { iotEdge: identity.capabilities.iotEdge },
  };
}

function section(values: TwinCollection, version: number, lastUpdated: string): TwinCollection {
  return { ...values, $metadata: { $lastUpdated: lastUpdated, $lastUpdatedVersion: version }, $version: version };
}

/**
 * RFC 7232 If-Match against an etag given unquoted: `*` matches any existing resource; a list of
 * (possibly weak, possibly unquoted) etags matches when one equals it.
 */
export function ifMatchHolds(ifMatch: string, etag: string): boolean {
  return ifMatch.split(',').some((candidate) => {
    const value = candidate.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
    return value === '*' || value === etag;
  });
}
