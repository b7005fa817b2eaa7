import type { AttestationMechanism, X509Certificates } from '@opendps/model';

/**
 * What a read returns. Certificates are never echoed, only their `info` (docs/service-rest.md §4), and
 * symmetric keys are omitted as on DPS, which serves them only from `attestationmechanism`.
 */
export function enrollmentView<T extends { attestation: AttestationMechanism }>(enrollment: T, options = { keys: false }): T {
  return { ...enrollment, attestation: attestationView(enrollment.attestation, options) };
}

export function attestationView(attestation: AttestationMechanism, options = { keys: false }): AttestationMechanism {
  const view: AttestationMechanism = { ...attestation };
  if (attestation.symmetricKey && !options.keys) view.symmetricKey = {} as AttestationMechanism['symmetricKey'];
  if (attestation.x509) {
    const { clientCertificates, signingCertificates, caReferences } = attestation.x509;
    view.x509 = {
      ...(clientCertificates ? { clientCertificates: infoOnly(clientCertificates) } : {}),
      ...(signingCertificates ? { signingCertificates: infoOnly(signingCertificates) } : {}),
      ...(caReferences ? { caReferences } : {}),
    };
  }
  return view;
}

function infoOnly(certificates: X509Certificates): X509Certificates {
  const view: X509Certificates = {};
  for (const slot of ['primary', 'secondary'] as const) {
    const entry = certificates[slot];
    if (entry) view[slot] = entry.info ? { info: entry.info } : {};
  }
  return view;
}
