import { Errors, silentLogger, type DpsError, type Logger, type TwinCollection } from '@opendps/model';
import type { HubAuthentication, HubConnector, HubDevice, HubDeviceIdentity } from '../connector';
import { isCollection } from '../twin';
import { parseHubConnectionString, type HubConnectionString } from './connection-string';
import { IotHubRestClient, type IotHubResponse, type IotHubRestClientOptions } from './rest-client';

export interface AzureIotHubConnectorOptions extends IotHubRestClientOptions {
  logger?: Logger;
}

type TwinWrite = { tags?: TwinCollection; desired?: TwinCollection; reported?: TwinCollection };

/** Attempts of a write that races another writer (device created or deleted in between, stale twin etag). */
const MAX_ATTEMPTS = 3;

/**
 * A linked Azure IoT hub (or a built-in hub, through its REST API) reached with a hub connection
 * string over the IoT Hub service REST API, as the `azure-iothub` Registry speaks it.
 *
 * Reported properties cannot be written through the service API (on Azure IoT Hub they belong to the
 * device), so a `reported` section given to `upsertDevice` (reprovisioning with migrate) is not
 * written: it is logged and dropped, and the device reports again once it connects to its new hub.
 */
export class AzureIotHubConnector implements HubConnector {
  readonly hostName: string;
  private readonly target: HubConnectionString;
  private readonly client: IotHubRestClient;
  private readonly logger: Logger;

  constructor(connectionString: string, options: AzureIotHubConnectorOptions = {}) {
    this.target = parseHubConnectionString(connectionString);
    this.hostName = this.target.hostName;
    this.client = new IotHubRestClient(this.target, options);
    this.logger = (options.logger ?? silentLogger).child({ hub: this.hostName, category: 'HubConnector' });
  }

  async getDevice(deviceId: string): Promise<HubDevice | undefined> {
    const device = await this.client.send('GET', devicePath(deviceId));
    if (device.status === 404) return undefined;
    this.expectOk(device, 'read the device');
    const twin = await this.client.send('GET', twinPath(deviceId));
    if (twin.status === 404) return undefined;
    this.expectOk(twin, 'read the twin');
    return { identity: fromAzureDevice(device.body), twin: fromAzureTwin(twin.body) };
  }

  /**
   * Creates the identity (PUT without If-Match), or on 409 replaces it (If-Match `*`); then, when
   * sections are given, makes the twin's tags and desired properties equal to them with one PATCH
   * (on an existing device: a merge patch computed against the current twin, under its etag).
   */
  async upsertDevice(identity: HubDeviceIdentity, twin?: TwinWrite): Promise<void> {
    const created = await this.writeIdentity(identity);
    if (!twin) return;
    if (twin.reported !== undefined && Object.keys(twin.reported).length > 0) {
      this.logger.warn({ deviceId: identity.deviceId }, 'reported properties cannot be written through the IoT Hub service API; not copied');
    }
    if (twin.tags === undefined && twin.desired === undefined) return;
    await this.writeTwin(identity.deviceId, twin, created);
  }

  async deleteDevice(deviceId: string): Promise<void> {
    const answer = await this.client.send('DELETE', devicePath(deviceId), { ifMatch: '"*"' });
    if (answer.status === 404) throw Errors.deviceNotFound(`Device '${deviceId}' is not registered on ${this.hostName}.`);
    this.expectOk(answer, 'delete the device');
  }

  /** Ends the keep-alive connections. */
  close(): void {
    this.client.close();
  }

  /** Returns true when the device was created, false when an existing one was replaced. */
  private async writeIdentity(identity: HubDeviceIdentity): Promise<boolean> {
    const body = toAzureDevice(identity);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const created = await this.client.send('PUT', devicePath(identity.deviceId), { body });
      if (created.status !== 409) {
        this.expectOk(created, 'create the device');
        return true;
      }
      const replaced = await this.client.send('PUT', devicePath(identity.deviceId), { body, ifMatch: '"*"' });
      // Deleted between the two calls: create it again.
      if (replaced.status === 404 || replaced.status === 412) continue;
      this.expectOk(replaced, 'update the device');
      return false;
    }
    throw Errors.hubUnavailable(`Device '${identity.deviceId}' kept changing on ${this.hostName}; try again.`);
  }

  private async writeTwin(deviceId: string, twin: TwinWrite, created: boolean): Promise<void> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      let etag = '"*"';
      let current: TwinWrite = {};
      if (!created || attempt > 0) {
        const read = await this.client.send('GET', twinPath(deviceId));
        this.expectOk(read, 'read the twin');
        const parsed = fromAzureTwin(read.body);
        current = { tags: parsed.tags, desired: parsed.properties.desired };
        const readEtag = isCollection(read.body) ? read.body.etag : undefined;
        if (typeof readEtag === 'string' && readEtag !== '') etag = `"${readEtag.replace(/^"(.*)"$/, '$1')}"`;
      }
      const patch: TwinCollection = {};
      if (twin.tags !== undefined) patch.tags = replacementPatch(current.tags ?? {}, twin.tags);
      if (twin.desired !== undefined) patch.properties = { desired: replacementPatch(current.desired ?? {}, twin.desired) };
      const answer = await this.client.send('PATCH', twinPath(deviceId), { body: patch, ifMatch: etag });
      if (answer.status === 412) continue;
      this.expectOk(answer, 'write the twin');
      return;
    }
    throw Errors.hubUnavailable(`The twin of '${deviceId}' kept changing on ${this.hostName}; try again.`);
  }

  private expectOk(answer: IotHubResponse, what: string): void {
    if (answer.status >= 200 && answer.status < 300) return;
    const error = hubError(answer, `${this.hostName} refused to ${what}`);
    this.logger.warn({ status: answer.status, errorCode: answer.errorCode, err: answer.message }, `IoT hub refused to ${what}`);
    throw error;
  }
}

/**
 * An IoT hub's refusal as a DPS error: its throttling and server errors are `hubUnavailable` (503,
 * retryable); any other refusal, our credentials included, is `deviceUnauthorizedAtHub` (400209), as
 * DPS reports a device it could not register at its hub.
 */
function hubError(answer: IotHubResponse, context: string): DpsError {
  const detail = `${context}: ${answer.status}${answer.errorCode ? ` ${answer.errorCode}` : ''} ${answer.message}`.trim();
  if (answer.status === 429 || answer.status >= 500 || answer.status < 200) return Errors.hubUnavailable(detail);
  return Errors.deviceUnauthorizedAtHub(detail);
}

function devicePath(deviceId: string): string {
  return `/devices/${encodeURIComponent(deviceId)}`;
}

function twinPath(deviceId: string): string {
  return `/twins/${encodeURIComponent(deviceId)}`;
}

function toAzureDevice(identity: HubDeviceIdentity): TwinCollection {
  const { authentication } = identity;
  return {
    deviceId: identity.deviceId,
    status: identity.status,
    capabilities: { iotEdge: identity.capabilities.iotEdge },
    authentication:
      authentication.type === 'sas'
        ? { type: 'sas', symmetricKey: { ...authentication.symmetricKey } }
        : {
            type: 'selfSigned',
            x509Thumbprint: {
              primaryThumbprint: authentication.x509Thumbprint.primaryThumbprint,
              secondaryThumbprint: authentication.x509Thumbprint.secondaryThumbprint ?? null,
            },
          },
  };
}

function fromAzureDevice(body: unknown): HubDeviceIdentity {
  if (!isCollection(body) || typeof body.deviceId !== 'string') throw Errors.hubUnavailable('The IoT hub answered with no device.');
  const auth = isCollection(body.authentication) ? body.authentication : {};
  let authentication: HubAuthentication;
  if (auth.type === 'sas' && isCollection(auth.symmetricKey)) {
    authentication = { type: 'sas', symmetricKey: { primaryKey: String(auth.symmetricKey.primaryKey), secondaryKey: String(auth.symmetricKey.secondaryKey) } };
  } else if (auth.type === 'selfSigned' && isCollection(auth.x509Thumbprint)) {
    const { primaryThumbprint, secondaryThumbprint } = auth.x509Thumbprint;
    authentication = {
      type: 'selfSigned',
      x509Thumbprint: {
        primaryThumbprint: String(primaryThumbprint),
        ...(typeof secondaryThumbprint === 'string' && secondaryThumbprint ? { secondaryThumbprint } : {}),
      },
    };
  } else {
    throw Errors.deviceUnauthorizedAtHub(`Device '${body.deviceId}' uses authentication type '${String(auth.type)}', which OpenDPS does not provision.`);
  }
  const capabilities = isCollection(body.capabilities) ? body.capabilities : {};
  return {
    deviceId: body.deviceId,
    authentication,
    status: body.status === 'disabled' ? 'disabled' : 'enabled',
    capabilities: { iotEdge: capabilities.iotEdge === true },
  };
}

function fromAzureTwin(body: unknown): HubDevice['twin'] {
  const twin = isCollection(body) ? body : {};
  const properties = isCollection(twin.properties) ? twin.properties : {};
  return {
    tags: isCollection(twin.tags) ? twin.tags : {},
    properties: { desired: withoutMetadata(properties.desired), reported: withoutMetadata(properties.reported) },
  };
}

/** A section as the HubConnector shows it: its values and `$version`, without IoT Hub's `$metadata`. */
function withoutMetadata(section: unknown): TwinCollection {
  if (!isCollection(section)) return {};
  const { $metadata: _metadata, ...rest } = section;
  return rest;
}

/**
 * The JSON merge patch that turns `before` into `after`: changed values set, nested objects patched
 * recursively, removed keys set to null. Hub-owned `$` keys of `before` are left alone.
 */
export function replacementPatch(before: TwinCollection, after: TwinCollection): TwinCollection {
  const patch: TwinCollection = {};
  for (const [key, value] of Object.entries(after)) {
    if (key.startsWith('$')) continue;
    const previous = before[key];
    patch[key] = isCollection(value) && isCollection(previous) ? replacementPatch(previous, value) : value;
  }
  for (const key of Object.keys(before)) if (!key.startsWith('$') && !(key in after)) patch[key] = null;
  return patch;
}
