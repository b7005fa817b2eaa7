import { Errors, type CaCertificate } from '@opendps/model';

/**
 * The wire shape of a CA certificate: ARM's CertificateResponse (`Microsoft.Devices/ProvisioningServices/
 * Certificates`), dates in RFC 1123 as ARM sends them, plus `thumbprintSha256` (DPS matches devices by
 * either thumbprint). `verificationCode` is shown while a proof of possession is pending: it is no
 * secret from a caller who may generate a new one (the same ServiceConfig right).
 */
export interface CertificateResponse {
  id: string;
  name: string;
  type: typeof CERTIFICATE_TYPE;
  etag?: string;
  properties: CertificateProperties;
}

export interface CertificateProperties {
  /** `CN=…, O=…`, most significant RDN last, as DPS writes distinguished names. */
  subject: string;
  /** Upper-case hex SHA-1, as ARM; `thumbprintSha256` is the SHA-256. */
  thumbprint: string;
  thumbprintSha256: string;
  /** notAfter, RFC 1123. */
  expiry: string;
  isVerified: boolean;
  /** Present while a proof of possession is pending (and in the generateVerificationCode answer). */
  verificationCode?: string;
  created?: string;
  updated?: string;
  /** The CA certificate as PEM. */
  certificate: string;
}

export const CERTIFICATE_TYPE = 'Microsoft.Devices/ProvisioningServices/Certificates';

export function certificateView(ca: CaCertificate): CertificateResponse {
  return {
    id: `/certificates/${encodeURIComponent(ca.name)}`,
    name: ca.name,
    type: CERTIFICATE_TYPE,
    ...(ca.etag !== undefined ? { etag: ca.etag } : {}),
    properties: {
      subject: ca.info.subjectName,
      thumbprint: ca.info.sha1Thumbprint,
      thumbprintSha256: ca.info.sha256Thumbprint,
      expiry: rfc1123(ca.info.notAfterUtc),
      isVerified: ca.isVerified,
      ...(ca.verificationCode ? { verificationCode: ca.verificationCode } : {}),
      ...(ca.createdDateTimeUtc ? { created: rfc1123(ca.createdDateTimeUtc) } : {}),
      ...(ca.lastUpdatedDateTimeUtc ? { updated: rfc1123(ca.lastUpdatedDateTimeUtc) } : {}),
      certificate: ca.certificate,
    },
  };
}

function rfc1123(isoUtc: string): string {
  return new Date(isoUtc).toUTCString();
}

/**
 * The `certificate` string of a request body: `{ "certificate": … }`, or ARM's create body
 * `{ "properties": { "certificate": … } }`.
 */
export function certificateOf(body: unknown): string {
  if (!isObject(body)) throw Errors.invalidField('The body must be a JSON object {"certificate": "<PEM or base64>"}.');
  const source = body.certificate === undefined && isObject(body.properties) ? body.properties : body;
  const certificate = source.certificate;
  if (typeof certificate !== 'string' || certificate.trim() === '') {
    throw Errors.invalidField("'certificate' is required: the certificate as PEM, base64 DER or base64 of the PEM.");
  }
  return certificate;
}

/**
 * ARM lets an upload claim `isVerified: true`; here a CA counts only after a proof of possession,
 * so that claim is refused rather than silently ignored.
 */
export function assertNoVerifiedClaim(body: unknown): void {
  if (!isObject(body)) return;
  const claims = [body.isVerified, isObject(body.properties) ? body.properties.isVerified : undefined];
  if (claims.some((claim) => claim !== undefined && claim !== false)) {
    throw Errors.invalidField(
      'isVerified cannot be set on upload: generate a verification code and POST a proof of possession to /verify.',
    );
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
