import type { TwinCollection } from '@opendps/model';

/** How a device authenticates at its hub (the IoT Hub registry's `authentication`). */
export type HubAuthentication =
  | { type: 'sas'; symmetricKey: { primaryKey: string; secondaryKey: string } }
  /** The leaf certificate's SHA-1 or SHA-256 thumbprints (uppercase hex, as IoT Hub accepts both). */
  | { type: 'selfSigned'; x509Thumbprint: { primaryThumbprint: string; secondaryThumbprint?: string } };

export interface HubDeviceIdentity {
  deviceId: string;
  authentication: HubAuthentication;
  status: 'enabled' | 'disabled';
  capabilities: { iotEdge: boolean };
}

export interface HubTwin {
  tags: TwinCollection;
  properties: { desired: TwinCollection; reported: TwinCollection };
}

export interface HubDevice {
  identity: HubDeviceIdentity;
  twin: HubTwin;
}

/**
 * What the registration service needs of an IoT hub. Implemented by the built-in hub and by the
 * Azure IoT Hub REST connector; failures are thrown as DpsError (`hubUnavailable`, `deviceUnauthorizedAtHub`).
 */
export interface HubConnector {
  /** What devices see as `assignedHub` (`host:port` for a built-in hub on a non-default port). */
  readonly hostName: string;
  getDevice(deviceId: string): Promise<HubDevice | undefined>;
  /**
   * Creates or replaces the identity; the twin is replaced only when `twin` is given. `hint.absent`:
   * the caller has just read the device and found none, so a connector may try a conditional create
   * first instead of reading again (it must still never overwrite a device created meanwhile).
   */
  upsertDevice(
    identity: HubDeviceIdentity,
    twin?: { tags?: TwinCollection; desired?: TwinCollection; reported?: TwinCollection },
    hint?: { absent?: boolean },
  ): Promise<void>;
  deleteDevice(deviceId: string): Promise<void>;
}
