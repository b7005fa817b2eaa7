import type { X509Certificate } from 'node:crypto';
import { parseSasToken, verifySasToken } from '@opendps/attestation';
import { isDpsError, thumbprint } from '@opendps/model';
import type { DeviceDocument } from './registry';

/**
 * MQTT CONNACK return codes (MQTT 3.1.1 §3.2.2.3). The mapping follows what the Azure C SDK reports
 * to applications: 4 -> BAD_CREDENTIAL, 5 -> DEVICE_DISABLED; the Node SDK treats both as unauthorized.
 */
export const ConnackCode = {
  identifierRejected: 2,
  serverUnavailable: 3,
  badUsernameOrPassword: 4,
  notAuthorized: 5,
} as const;
export type ConnackCode = (typeof ConnackCode)[keyof typeof ConnackCode];

export interface DeviceCredentials {
  clientId: string;
  username: string | undefined;
  password: Buffer | undefined;
  /** The leaf certificate the client presented in TLS, if any. */
  peerCertificate: X509Certificate | undefined;
}

export type AuthOutcome =
  | { ok: true; device: DeviceDocument; method: 'sas' | 'x509' }
  | { ok: false; code: ConnackCode; reason: string };

export interface AuthContext {
  /** Host names the device may name in its username and token (`host:port`, case-insensitive). */
  hostNames: readonly string[];
  lookup(deviceId: string): Promise<DeviceDocument | undefined>;
  now?: Date;
}

/**
 * CONNECT authentication (docs/device-wire.md §8, §1). The username is
 * `{HostName}/{deviceId}/?api-version=…`: its HostName must be one of this hub's names and its
 * deviceId must equal the clientId (module identities are not supported). A SAS password is verified
 * against the device's keys for `{HostName}/devices/{deviceId}`; without a password the TLS client
 * certificate's SHA-1 or SHA-256 thumbprint must match the device's.
 */
export async function authenticateDevice(credentials: DeviceCredentials, context: AuthContext): Promise<AuthOutcome> {
  const { clientId, username, password, peerCertificate } = credentials;
  const parsed = parseUsername(username);
  if (!parsed) return refuse(ConnackCode.badUsernameOrPassword, 'The username is not {HostName}/{deviceId}/?api-version=….');
  if (parsed.moduleId !== undefined) return refuse(ConnackCode.identifierRejected, 'Module identities are not supported.');
  if (parsed.deviceId !== clientId) return refuse(ConnackCode.identifierRejected, 'The clientId must equal the username device id.');
  const hostName = context.hostNames.find((name) => name.toLowerCase() === parsed.hostName.toLowerCase());
  if (!hostName) return refuse(ConnackCode.badUsernameOrPassword, `The username names another hub ('${parsed.hostName}').`);

  let device: DeviceDocument | undefined;
  try {
    device = await context.lookup(clientId);
  } catch {
    return refuse(ConnackCode.serverUnavailable, 'The device registry is unavailable.');
  }
  if (!device) return refuse(ConnackCode.badUsernameOrPassword, 'The device is not registered on this hub.');
  if (device.identity.status !== 'enabled') return refuse(ConnackCode.notAuthorized, 'The device is disabled.');

  const authentication = device.identity.authentication;
  if (password !== undefined && password.length > 0) {
    if (authentication.type !== 'sas') return refuse(ConnackCode.badUsernameOrPassword, 'The device authenticates with X.509.');
    try {
      const token = parseSasToken(password.toString('utf8'));
      verifySasToken(token, {
        expectedResource: `${hostName}/devices/${clientId}`,
        keys: [authentication.symmetricKey.primaryKey, authentication.symmetricKey.secondaryKey],
        ...(context.now ? { now: context.now } : {}),
      });
    } catch (error) {
      return refuse(ConnackCode.badUsernameOrPassword, isDpsError(error) ? error.message : 'The SAS token is invalid.');
    }
    return { ok: true, device, method: 'sas' };
  }

  if (authentication.type !== 'selfSigned') return refuse(ConnackCode.badUsernameOrPassword, 'A SAS token is required.');
  if (!peerCertificate) return refuse(ConnackCode.badUsernameOrPassword, 'No client certificate was presented.');
  const now = (context.now ?? new Date()).getTime();
  if (now < Date.parse(peerCertificate.validFrom) || now > Date.parse(peerCertificate.validTo)) {
    return refuse(ConnackCode.badUsernameOrPassword, 'The client certificate is outside its validity period.');
  }
  const { primaryThumbprint, secondaryThumbprint } = authentication.x509Thumbprint;
  const expected = [primaryThumbprint, secondaryThumbprint].filter((t): t is string => !!t).map((t) => t.toUpperCase());
  const presented = [thumbprint(peerCertificate, 'sha1'), thumbprint(peerCertificate, 'sha256')];
  if (!presented.some((t) => expected.includes(t))) {
    return refuse(ConnackCode.badUsernameOrPassword, 'The client certificate thumbprint does not match the device.');
  }
  return { ok: true, device, method: 'x509' };
}

function refuse(code: ConnackCode, reason: string): AuthOutcome {
  return { ok: false, code, reason };
}

/** `{HostName}/{deviceId}/?query`, or `{HostName}/{deviceId}/{moduleId}/?query`; older clients omit the `?`. */
export function parseUsername(
  username: string | undefined,
): { hostName: string; deviceId: string; moduleId?: string } | undefined {
  if (!username) return undefined;
  const queryAt = username.indexOf('/?');
  const path = queryAt >= 0 ? username.slice(0, queryAt) : username.replace(/\/api-version=.*$/, '');
  const segments = path.replace(/\/$/, '').split('/');
  const [hostName, deviceId, moduleId] = segments;
  if (!hostName || !deviceId || segments.length > 3 || moduleId === '') return undefined;
  return { hostName, deviceId, ...(moduleId !== undefined ? { moduleId } : {}) };
}
