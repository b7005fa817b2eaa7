import { readFileSync } from 'node:fs';
import { deriveDeviceKey } from '@opendps/attestation';
import type { Credentials } from './clients/types';
import { createDeviceCertificateIssuer } from './x509';

/**
 * Who device number `index` is. Plain data (strings), so the same description builds the same
 * devices in every worker process.
 */
export type AttestationSpec =
  | { kind: 'group-key'; groupKey: string; prefix: string }
  | { kind: 'keys'; devices: Array<{ registrationId: string; key: string }> }
  | { kind: 'x509'; caCert: string; caKey: string; prefix: string };

export interface CredentialSource {
  /** How many devices there are; undefined: as many as asked for. */
  size?: number;
  credentials(index: number): Credentials;
}

export function credentialSource(spec: AttestationSpec): CredentialSource {
  switch (spec.kind) {
    case 'group-key':
      return { credentials: (index) => withKey(`${spec.prefix}${index}`, (id) => deriveDeviceKey(spec.groupKey, id)) };
    case 'keys':
      return {
        size: spec.devices.length,
        credentials: (index) => {
          const device = spec.devices[index];
          if (!device) throw new RangeError(`the keys file lists ${spec.devices.length} devices; there is no device ${index}`);
          return { registrationId: device.registrationId, key: device.key };
        },
      };
    case 'x509': {
      const issuer = createDeviceCertificateIssuer(spec.caCert, spec.caKey);
      return {
        credentials: (index) => {
          const registrationId = `${spec.prefix}${index}`;
          const { cert, key } = issuer.issue(registrationId);
          return { registrationId, cert, certKey: key };
        },
      };
    }
  }
}

function withKey(registrationId: string, key: (id: string) => string): Credentials {
  return { registrationId, key: key(registrationId) };
}

/**
 * Individual keys from a file: CSV lines `registrationId,key` (a header line naming them is skipped)
 * or a JSON array of `{registrationId, key}`.
 */
export function readKeysFile(file: string): Array<{ registrationId: string; key: string }> {
  const text = readFileSync(file, 'utf8');
  const fail = (why: string): never => {
    throw new KeysFileError(`${file}: ${why}`);
  };
  let devices: Array<{ registrationId: string; key: string }>;
  if (text.trimStart().startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      return fail(`not valid JSON (${(error as Error).message})`);
    }
    devices = (parsed as unknown[]).map((item, index) => {
      const entry = item as { registrationId?: unknown; key?: unknown };
      if (typeof entry?.registrationId !== 'string' || typeof entry.key !== 'string') {
        return fail(`item ${index} needs string registrationId and key`);
      }
      return { registrationId: entry.registrationId, key: entry.key };
    });
  } else {
    devices = [];
    text.split(/\r?\n/).forEach((line, index) => {
      const trimmed = line.trim();
      if (!trimmed || trimmed.startsWith('#')) return;
      const [registrationId = '', key = '', ...rest] = trimmed.split(',').map((cell) => cell.trim());
      if (index === 0 && /^registration-?id$/i.test(registrationId)) return;
      if (!registrationId || !key || rest.length) fail(`line ${index + 1} is not 'registrationId,key'`);
      devices.push({ registrationId, key });
    });
  }
  if (devices.length === 0) fail('lists no devices');
  return devices;
}

export class KeysFileError extends Error {}
