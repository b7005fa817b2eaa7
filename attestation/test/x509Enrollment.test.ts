import { X509Certificate } from 'node:crypto';
import { matchX509Enrollment, type X509EnrollmentSource } from '@opendps/attestation';
import {
  certificateInfo,
  parseCertificate,
  thumbprint,
  type CaCertificate,
  type EnrollmentGroup,
  type IndividualEnrollment,
  type ProvisioningStatus,
  type X509Certificates,
} from '@opendps/model';
import { createIntermediateCa, createLeaf, createRootCa, type Issued } from '@opendps/pki';

const DAY = 24 * 3600_000;
const x509 = (issued: Issued): X509Certificate => new X509Certificate(issued.certificatePem);
const sha256 = (issued: Issued): string => thumbprint(x509(issued), 'sha256');

/**
 * The enrollments of one ID scope, indexed the way the store repositories index them (thumbprints,
 * signing subjects, CA names): the data source of a pure function, not a stand-in for a service.
 * `lookups` counts index reads, to show the matcher never needs a scan.
 */
class MemorySource implements X509EnrollmentSource {
  lookups = 0;
  private readonly index = new Map<string, unknown[]>();

  constructor(data: { enrollments?: IndividualEnrollment[]; groups?: EnrollmentGroup[]; cas?: CaCertificate[] }) {
    for (const enrollment of data.enrollments ?? []) {
      for (const info of infos(enrollment.attestation.x509?.clientCertificates)) this.add('client', info.sha256Thumbprint, enrollment);
    }
    for (const group of data.groups ?? []) {
      const x509Attestation = group.attestation.x509;
      for (const info of infos(x509Attestation?.signingCertificates)) {
        this.add('signing', info.sha256Thumbprint, group);
        this.add('signingSubject', info.subjectName, group);
      }
      for (const name of [x509Attestation?.caReferences?.primary, x509Attestation?.caReferences?.secondary]) {
        if (name) this.add('caReference', name, group);
      }
    }
    for (const ca of data.cas ?? []) {
      this.add('ca', ca.info.sha256Thumbprint, ca);
      this.add('caSubject', ca.info.subjectName, ca);
    }
  }

  private add(index: string, key: string, value: unknown): void {
    const id = `${index}\n${key.toLowerCase()}`;
    this.index.set(id, [...(this.index.get(id) ?? []), value]);
  }

  private find<T>(index: string, key: string): Promise<T[]> {
    this.lookups++;
    return Promise.resolve((this.index.get(`${index}\n${key.toLowerCase()}`) ?? []) as T[]);
  }

  enrollmentsByClientThumbprint = (key: string) => this.find<IndividualEnrollment>('client', key);
  groupsBySigningThumbprint = (key: string) => this.find<EnrollmentGroup>('signing', key);
  groupsBySigningSubject = (key: string) => this.find<EnrollmentGroup>('signingSubject', key);
  groupsByCaReference = (key: string) => this.find<EnrollmentGroup>('caReference', key);
  caCertificatesByThumbprint = (key: string) => this.find<CaCertificate>('ca', key);
  caCertificatesBySubject = (key: string) => this.find<CaCertificate>('caSubject', key);
}

function infos(certificates: X509Certificates | undefined) {
  return [certificates?.primary?.info, certificates?.secondary?.info].filter((info) => info !== undefined);
}

/** What the service API stores on write: the PEM as sent and the info derived from it. */
function slot(issued: Issued): X509Certificates {
  return { primary: { certificate: issued.certificatePem, info: certificateInfo(parseCertificate(issued.certificatePem)) } };
}

function individual(registrationId: string, certificate: Issued, status: ProvisioningStatus = 'enabled', deviceId?: string): IndividualEnrollment {
  return {
    registrationId,
    ...(deviceId ? { deviceId } : {}),
    attestation: { type: 'x509', x509: { clientCertificates: slot(certificate) } },
    provisioningStatus: status,
  };
}

function signingGroup(enrollmentGroupId: string, signer: Issued, status: ProvisioningStatus = 'enabled'): EnrollmentGroup {
  return { enrollmentGroupId, attestation: { type: 'x509', x509: { signingCertificates: slot(signer) } }, provisioningStatus: status };
}

function caGroup(enrollmentGroupId: string, caName: string, status: ProvisioningStatus = 'enabled'): EnrollmentGroup {
  return { enrollmentGroupId, attestation: { type: 'x509', x509: { caReferences: { primary: caName } } }, provisioningStatus: status };
}

function caCertificate(name: string, certificate: Issued, isVerified: boolean): CaCertificate {
  return { name, certificate: certificate.certificatePem, info: certificateInfo(parseCertificate(certificate.certificatePem)), isVerified };
}

const UNKNOWN_CA =
  'No enrollment matches the client certificate and no enrollment group matches any of its issuers (unknown CA).';

describe('matchX509Enrollment (docs/service-rest.md §14)', () => {
  let root: Issued;
  let intermediate1: Issued;
  let intermediate2: Issued;
  let device: Issued; // under intermediate2
  let deviceOfRoot: Issued;
  let selfSigned: Issued;
  let fullChain: X509Certificate[];

  beforeAll(() => {
    root = createRootCa({ commonName: 'Match Root' });
    intermediate1 = createIntermediateCa(root, { commonName: 'Match Intermediate 1' });
    intermediate2 = createIntermediateCa(intermediate1, { commonName: 'Match Intermediate 2' });
    device = createLeaf(intermediate2, { commonName: 'device-1' });
    deviceOfRoot = createLeaf(root, { commonName: 'device-2' });
    selfSigned = createLeaf(undefined, { commonName: 'self-1' });
    fullChain = [device, intermediate2, intermediate1, root].map(x509);
  });

  describe('individual enrollments', () => {
    it('matches a self-signed leaf and takes the deviceId from the enrollment', async () => {
      const source = new MemorySource({ enrollments: [individual('self-1', selfSigned, 'enabled', 'custom-device-id')] });
      const match = await matchX509Enrollment([x509(selfSigned)], source, { registrationId: 'self-1' });
      expect(match).toMatchObject({ kind: 'individual', deviceId: 'custom-device-id' });
      expect(match.kind === 'individual' && match.enrollment.registrationId).toBe('self-1');
      expect(match.x509).toEqual({ certificateInfo: certificateInfo(parseCertificate(selfSigned.certificatePem)) });
      expect(source.lookups).toBe(1);
    });

    it('beats a group that matches the same chain', async () => {
      const source = new MemorySource({
        enrollments: [individual('device-1', device)],
        groups: [signingGroup('group-intermediate2', intermediate2)],
      });
      const match = await matchX509Enrollment(fullChain, source, { registrationId: 'device-1' });
      expect(match.kind).toBe('individual');
      expect(match.deviceId).toBe('device-1');
      expect(match.x509.enrollmentGroupId).toBeUndefined();
    });

    it('refuses a disabled individual enrollment even when a group would match', async () => {
      const source = new MemorySource({
        enrollments: [individual('device-1', device, 'disabled')],
        groups: [signingGroup('group-root', root)],
      });
      await expect(matchX509Enrollment(fullChain, source, { registrationId: 'device-1' })).rejects.toMatchObject({
        status: 401,
        errorCode: 401007,
        message: "The enrollment 'device-1' is disabled.",
        info: { registrationId: 'device-1' },
      });
    });

    it('refuses a certificate enrolled under another registration id', async () => {
      const source = new MemorySource({ enrollments: [individual('someone-else', selfSigned)] });
      await expect(matchX509Enrollment([x509(selfSigned)], source, { registrationId: 'self-1' })).rejects.toMatchObject({
        errorCode: 401002,
        message: "The client certificate is enrolled for registration id 'someone-else', not 'self-1'.",
      });
    });
  });

  describe('registration id', () => {
    it("refuses a leaf whose CN is not the registration id", async () => {
      const source = new MemorySource({ groups: [signingGroup('group-root', root)] });
      await expect(matchX509Enrollment(fullChain, source, { registrationId: 'device-9' })).rejects.toMatchObject({
        status: 401,
        errorCode: 401002,
        message: "The client certificate's common name 'device-1' does not match the registration id 'device-9'.",
      });
      expect(source.lookups).toBe(0);
    });

    it('compares case-insensitively and takes the group deviceId from the CN', async () => {
      const source = new MemorySource({ groups: [signingGroup('group-root', root)] });
      const match = await matchX509Enrollment(fullChain, source, { registrationId: 'DEVICE-1' });
      expect(match).toMatchObject({ kind: 'group', deviceId: 'device-1' });
    });
  });

  describe('group precedence', () => {
    it('prefers the group of the first intermediate to the root group', async () => {
      const source = new MemorySource({
        groups: [signingGroup('group-root', root), signingGroup('group-intermediate1', intermediate1), signingGroup('group-intermediate2', intermediate2)],
      });
      const match = await matchX509Enrollment(fullChain, source, { registrationId: 'device-1' });
      expect(match.kind === 'group' && match.group.enrollmentGroupId).toBe('group-intermediate2');
      expect(match.kind === 'group' && match.signer.fingerprint256).toBe(x509(intermediate2).fingerprint256);
      expect(match.x509).toEqual({
        certificateInfo: certificateInfo(parseCertificate(device.certificatePem)),
        enrollmentGroupId: 'group-intermediate2',
        signingCertificateInfo: certificateInfo(parseCertificate(intermediate2.certificatePem)),
      });
    });

    it('walks up to the next intermediate, then the root', async () => {
      const upper = new MemorySource({ groups: [signingGroup('group-root', root), signingGroup('group-intermediate1', intermediate1)] });
      const viaIntermediate1 = await matchX509Enrollment(fullChain, upper, { registrationId: 'device-1' });
      expect(viaIntermediate1.x509.enrollmentGroupId).toBe('group-intermediate1');
      const rootOnly = new MemorySource({ groups: [signingGroup('group-root', root)] });
      const viaRoot = await matchX509Enrollment(fullChain, rootOnly, { registrationId: 'device-1' });
      expect(viaRoot.x509.enrollmentGroupId).toBe('group-root');
      expect(viaRoot.x509.signingCertificateInfo?.sha256Thumbprint).toBe(sha256(root));
    });

    it('refuses the device when the first match is disabled, even with an enabled group above it', async () => {
      const source = new MemorySource({
        groups: [signingGroup('group-root', root), signingGroup('group-intermediate2', intermediate2, 'disabled')],
      });
      await expect(matchX509Enrollment(fullChain, source, { registrationId: 'device-1' })).rejects.toMatchObject({
        status: 401,
        errorCode: 401007,
        message: "The enrollment group 'group-intermediate2' is disabled.",
        info: { enrollmentGroupId: 'group-intermediate2' },
      });
    });

    it('refuses a device whose only matching group, the root group, is disabled', async () => {
      const source = new MemorySource({ groups: [signingGroup('group-root', root, 'disabled')] });
      await expect(matchX509Enrollment(fullChain, source, { registrationId: 'device-1' })).rejects.toMatchObject({
        errorCode: 401007,
        message: "The enrollment group 'group-root' is disabled.",
      });
    });
  });

  describe('root left out of the chain', () => {
    it('finds the root group by the issuer of the last certificate and verifies its signature', async () => {
      const source = new MemorySource({ groups: [signingGroup('group-root', root)] });
      const match = await matchX509Enrollment(fullChain.slice(0, 3), source, { registrationId: 'device-1' });
      expect(match.kind === 'group' && match.signer.fingerprint256).toBe(x509(root).fingerprint256);
      expect(match.x509.signingCertificateInfo?.subjectName).toBe('CN=Match Root');
    });

    it('matches a leaf sent alone against the group of its issuer', async () => {
      const source = new MemorySource({ groups: [signingGroup('group-root', root)] });
      const match = await matchX509Enrollment([x509(deviceOfRoot)], source, { registrationId: 'device-2' });
      expect(match).toMatchObject({ kind: 'group', deviceId: 'device-2', x509: { enrollmentGroupId: 'group-root' } });
    });

    it('does not accept a stored root that only shares the name of the real issuer', async () => {
      const impostor = createRootCa({ commonName: 'Match Root' });
      const source = new MemorySource({ groups: [signingGroup('group-impostor', impostor)] });
      await expect(matchX509Enrollment([x509(deviceOfRoot)], source, { registrationId: 'device-2' })).rejects.toMatchObject({
        errorCode: 401002,
        message: UNKNOWN_CA,
      });
    });

    it('refuses when the stored root has expired', async () => {
      const oldRoot = createRootCa({ commonName: 'Old Root', notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) });
      const leaf = createLeaf(oldRoot, { commonName: 'device-old' });
      const source = new MemorySource({ groups: [signingGroup('group-old', oldRoot)] });
      await expect(matchX509Enrollment([x509(leaf)], source, { registrationId: 'device-old' })).rejects.toMatchObject({
        errorCode: 401002,
        message: expect.stringMatching(/^The issuer certificate 'Old Root' has expired/),
      });
    });
  });

  describe('CA references', () => {
    it('matches through a verified CA, sent or left out', async () => {
      const source = new MemorySource({ groups: [caGroup('group-ca', 'match-root-ca')], cas: [caCertificate('match-root-ca', root, true)] });
      for (const chain of [fullChain, fullChain.slice(0, 3)]) {
        const match = await matchX509Enrollment(chain, source, { registrationId: 'device-1' });
        expect(match).toMatchObject({ kind: 'group', caName: 'match-root-ca', x509: { enrollmentGroupId: 'group-ca' } });
        expect(match.x509.signingCertificateInfo?.sha256Thumbprint).toBe(sha256(root));
      }
    });

    it('refuses a group whose CA is not verified', async () => {
      const source = new MemorySource({ groups: [caGroup('group-ca', 'match-root-ca')], cas: [caCertificate('match-root-ca', root, false)] });
      await expect(matchX509Enrollment(fullChain, source, { registrationId: 'device-1' })).rejects.toMatchObject({
        status: 401,
        errorCode: 401002,
        message:
          "The CA certificate 'match-root-ca' ('Match Root') used by enrollment group 'group-ca' is not verified (proof of possession is pending).",
      });
    });

    it('lets an unverified CA not count, so a verified group above it matches', async () => {
      const source = new MemorySource({
        groups: [caGroup('group-intermediate', 'intermediate-ca'), caGroup('group-root', 'root-ca')],
        cas: [caCertificate('intermediate-ca', intermediate2, false), caCertificate('root-ca', root, true)],
      });
      const match = await matchX509Enrollment(fullChain, source, { registrationId: 'device-1' });
      expect(match.x509.enrollmentGroupId).toBe('group-root');
    });

    it('refuses an unknown CA', async () => {
      const stranger = createRootCa({ commonName: 'Stranger Root' });
      const source = new MemorySource({
        enrollments: [individual('self-1', selfSigned)],
        groups: [signingGroup('group-stranger', stranger), caGroup('group-ca', 'stranger-ca')],
        cas: [caCertificate('stranger-ca', stranger, true), caCertificate('root-without-group', root, true)],
      });
      await expect(matchX509Enrollment(fullChain, source, { registrationId: 'device-1' })).rejects.toMatchObject({
        status: 401,
        errorCode: 401002,
        message: UNKNOWN_CA,
      });
    });
  });

  it('refuses a chain that does not verify before looking anything up', async () => {
    const expired = createLeaf(root, { commonName: 'device-3', notBefore: new Date(Date.now() - 3 * DAY), notAfter: new Date(Date.now() - DAY) });
    const source = new MemorySource({ groups: [signingGroup('group-root', root)] });
    await expect(matchX509Enrollment([x509(expired), x509(root)], source, { registrationId: 'device-3' })).rejects.toMatchObject({
      errorCode: 401002,
      message: expect.stringMatching(/^The client certificate 'device-3' has expired/),
    });
    expect(source.lookups).toBe(0);
  });
});
