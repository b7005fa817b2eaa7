import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  DpsError,
  assertDeviceId,
  assertEnrollmentGroupId,
  assertRegistrationId,
  assertSymmetricKey,
  generateSymmetricKey,
  isValidRegistrationId,
  parseJson,
  validateEnrollmentGroup,
  validateIndividualEnrollment,
} from '@opendps/model';

function errorCode(run: () => unknown): number | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    return error instanceof DpsError ? error.errorCode : -1;
  }
}

const key = (bytes: number) => Buffer.alloc(bytes, 7).toString('base64');
const symmetric = { type: 'symmetricKey', symmetricKey: { primaryKey: key(32), secondaryKey: key(32) } };

let dir: string;
let certificate: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'model-validation-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', path.join(dir, 'k.pem'), '-out', path.join(dir, 'c.pem'), '-subj', '/CN=x509-dev', '-days', '2'], { stdio: 'pipe' });
  certificate = readFileSync(path.join(dir, 'c.pem'), 'utf8');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ids', () => {
  it('accepts alphanumerics and : . _ - inside, up to 128 characters', () => {
    for (const id of ['a', 'dev-1', 'A.b_c:d-9', 'x'.repeat(128), 'sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6']) {
      expect({ id, valid: isValidRegistrationId(id) }).toEqual({ id, valid: true });
    }
  });

  it('refuses special characters first or last, other characters, overlong and non-strings', () => {
    for (const id of ['', '-dev', 'dev-', '.dev', 'dev:', 'a b', 'a/b', 'a\\b', 'a@b', 'x'.repeat(129), 'é', 42, null, undefined]) {
      expect({ id, valid: isValidRegistrationId(id) }).toEqual({ id, valid: false });
    }
    expect(errorCode(() => assertRegistrationId('a/b'))).toBe(400003);
    expect(errorCode(() => assertEnrollmentGroupId('grp 1'))).toBe(400004);
    expect(assertEnrollmentGroupId('grp-1')).toBe('grp-1');
  });

  it('checks IoT Hub device ids with their wider character set', () => {
    expect(assertDeviceId("dev@home$(1)'")).toBe("dev@home$(1)'");
    expect(errorCode(() => assertDeviceId('a b'))).toBe(400014);
    expect(errorCode(() => assertDeviceId('x'.repeat(129)))).toBe(400014);
    expect(errorCode(() => assertDeviceId(''))).toBe(400014);
  });
});

describe('symmetric keys', () => {
  it('accepts base64 of 16 to 64 bytes only', () => {
    expect(assertSymmetricKey(key(16))).toBe(key(16));
    expect(assertSymmetricKey(key(64))).toBe(key(64));
    expect(errorCode(() => assertSymmetricKey(key(15)))).toBe(400006);
    expect(errorCode(() => assertSymmetricKey(key(65)))).toBe(400006);
    expect(errorCode(() => assertSymmetricKey('not base64!'))).toBe(400006);
    expect(errorCode(() => assertSymmetricKey(12))).toBe(400006);
  });

  it('generates distinct 64-byte keys', () => {
    const [a, b] = [generateSymmetricKey(), generateSymmetricKey()];
    expect(Buffer.from(a, 'base64')).toHaveLength(64);
    expect(a).not.toBe(b);
  });
});

describe('validateIndividualEnrollment', () => {
  it('fills defaults, generates omitted keys and drops read-only fields', () => {
    const enrollment = validateIndividualEnrollment({
      registrationId: 'dev-1',
      attestation: { type: 'symmetricKey' },
      registrationState: { registrationId: 'dev-1', status: 'assigned' },
      createdDateTimeUtc: '2020-01-01T00:00:00Z',
      unknownField: true,
    });
    expect(enrollment).toEqual({
      registrationId: 'dev-1',
      attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: expect.any(String), secondaryKey: expect.any(String) } },
      capabilities: { iotEdge: false },
      provisioningStatus: 'enabled',
    });
    expect(Buffer.from(enrollment.attestation.symmetricKey!.secondaryKey, 'base64')).toHaveLength(64);
  });

  it('takes the id from the path when the body omits it, and refuses a different one', () => {
    expect(validateIndividualEnrollment({ attestation: symmetric }, 'from-path').registrationId).toBe('from-path');
    expect(validateIndividualEnrollment({ registrationId: 'Dev-1', attestation: symmetric }, 'dev-1').registrationId).toBe('Dev-1');
    expect(errorCode(() => validateIndividualEnrollment({ registrationId: 'dev-2', attestation: symmetric }, 'dev-1'))).toBe(400009);
  });

  it('derives certificate info and refuses groups-only or missing X.509 material', () => {
    const enrollment = validateIndividualEnrollment({
      registrationId: 'x509-dev',
      attestation: { type: 'x509', x509: { clientCertificates: { primary: { certificate } } } },
    });
    expect(enrollment.attestation.x509?.clientCertificates?.primary?.info?.subjectName).toBe('CN=x509-dev');
    expect(errorCode(() => validateIndividualEnrollment({
      registrationId: 'x', attestation: { type: 'x509', x509: { signingCertificates: { primary: { certificate } } } },
    }))).toBe(400010);
    expect(errorCode(() => validateIndividualEnrollment({ registrationId: 'x', attestation: { type: 'x509', x509: {} } }))).toBe(400010);
    expect(errorCode(() => validateIndividualEnrollment({
      registrationId: 'x', attestation: { type: 'x509', x509: { clientCertificates: { primary: { certificate: 'garbage!' } } } },
    }))).toBe(400005);
    expect(errorCode(() => validateIndividualEnrollment({
      registrationId: 'x', attestation: { type: 'x509', x509: { clientCertificates: { primary: { info: { subjectName: 'CN=x' } } } } },
    }))).toBe(400005);
  });

  it('checks the TPM endorsement key carries its 2-byte size', () => {
    const body = Buffer.alloc(20, 1);
    const sized = Buffer.concat([Buffer.from([0, 20]), body]).toString('base64');
    expect(validateIndividualEnrollment({ registrationId: 't', attestation: { type: 'tpm', tpm: { endorsementKey: sized } } }).attestation.tpm)
      .toEqual({ endorsementKey: sized });
    expect(errorCode(() => validateIndividualEnrollment({ registrationId: 't', attestation: { type: 'tpm', tpm: { endorsementKey: body.toString('base64') } } }))).toBe(400011);
    expect(errorCode(() => validateIndividualEnrollment({ registrationId: 't', attestation: { type: 'tpm', tpm: {} } }))).toBe(400011);
  });

  it('refuses wrong types with 400002 and unknown attestation types', () => {
    const cases: Array<[object, number]> = [
      [{ registrationId: 'x', attestation: 'symmetricKey' }, 400002],
      [{ registrationId: 'x', attestation: { type: 'magic' } }, 400002],
      [{ registrationId: 'x', attestation: {} }, 400010],
      [{ registrationId: 'x', attestation: symmetric, provisioningStatus: 'paused' }, 400002],
      [{ registrationId: 'x', attestation: symmetric, iotHubs: [1] }, 400002],
      [{ registrationId: 'x', attestation: symmetric, capabilities: { iotEdge: 'yes' } }, 400002],
      [{ registrationId: 'x', attestation: symmetric, initialTwin: { tags: [] } }, 400002],
      [{ registrationId: 'x', attestation: symmetric, deviceId: 'a b' }, 400014],
      [{ registrationId: 5, attestation: symmetric }, 400003],
    ];
    for (const [body, code] of cases) expect({ body, code: errorCode(() => validateIndividualEnrollment(body)) }).toEqual({ body, code });
    expect(errorCode(() => validateIndividualEnrollment('text'))).toBe(400002);
    expect(errorCode(() => validateIndividualEnrollment(null))).toBe(400002);
  });

  it('checks allocation settings', () => {
    const base = { registrationId: 'x', attestation: symmetric };
    expect(validateIndividualEnrollment({ ...base, allocationPolicy: 'static', iotHubs: ['hub-a'] }).allocationPolicy).toBe('static');
    expect(errorCode(() => validateIndividualEnrollment({ ...base, allocationPolicy: 'static', iotHubs: ['hub-a', 'hub-b'] }))).toBe(400012);
    expect(errorCode(() => validateIndividualEnrollment({ ...base, allocationPolicy: 'static' }))).toBe(400012);
    expect(errorCode(() => validateIndividualEnrollment({ ...base, allocationPolicy: 'custom' }))).toBe(400012);
    expect(errorCode(() => validateIndividualEnrollment({
      ...base, allocationPolicy: 'custom', customAllocationDefinition: { webhookUrl: 'ftp://x', apiVersion: '2021-10-01' },
    }))).toBe(400012);
    const custom = validateIndividualEnrollment({
      ...base, allocationPolicy: 'custom', customAllocationDefinition: { webhookUrl: 'https://fn.example/api', apiVersion: '2021-10-01' },
    });
    expect(custom.customAllocationDefinition?.webhookUrl).toBe('https://fn.example/api');
    expect(validateIndividualEnrollment({ ...base, reprovisionPolicy: {} }).reprovisionPolicy).toEqual({ updateHubAssignment: true, migrateDeviceData: true });
    expect(validateIndividualEnrollment({ ...base, reprovisionPolicy: { migrateDeviceData: false } }).reprovisionPolicy)
      .toEqual({ updateHubAssignment: true, migrateDeviceData: false });
  });
});

describe('validateEnrollmentGroup', () => {
  it('accepts symmetric keys, signing certificates and CA references', () => {
    expect(validateEnrollmentGroup({ enrollmentGroupId: 'g', attestation: symmetric }).attestation.symmetricKey).toEqual(symmetric.symmetricKey);
    const signing = validateEnrollmentGroup({ enrollmentGroupId: 'g', attestation: { type: 'x509', x509: { signingCertificates: { primary: { certificate } } } } });
    expect(signing.attestation.x509?.signingCertificates?.primary?.info?.sha256Thumbprint).toMatch(/^[0-9A-F]{64}$/);
    const ca = validateEnrollmentGroup({ enrollmentGroupId: 'g', attestation: { type: 'x509', x509: { caReferences: { primary: 'root' } } } });
    expect(ca.attestation.x509).toEqual({ caReferences: { primary: 'root' } });
  });

  it('refuses TPM, client certificates and a mismatched id', () => {
    expect(errorCode(() => validateEnrollmentGroup({ enrollmentGroupId: 'g', attestation: { type: 'tpm', tpm: {} } }))).toBe(400010);
    expect(errorCode(() => validateEnrollmentGroup({
      enrollmentGroupId: 'g', attestation: { type: 'x509', x509: { clientCertificates: { primary: { certificate } } } },
    }))).toBe(400010);
    expect(errorCode(() => validateEnrollmentGroup({ enrollmentGroupId: 'g', attestation: symmetric }, 'h'))).toBe(400009);
    expect(errorCode(() => validateEnrollmentGroup({ enrollmentGroupId: 'g h', attestation: symmetric }))).toBe(400004);
  });
});

describe('parseJson', () => {
  it('parses JSON and maps a syntax error to 400001', () => {
    expect(parseJson('{"a":1}')).toEqual({ a: 1 });
    expect(errorCode(() => parseJson('{"a":'))).toBe(400001);
  });
});
