/**
 * Just enough DER to show what an uploaded certificate is before it is sent: subject, issuer,
 * validity, serial number and thumbprints (the fields of an X.509 attestation's `info`,
 * docs/service-rest.md §3). The server parses and checks the certificate itself; this is a preview.
 */
export interface CertificateDetails {
  subject: string;
  issuer: string;
  notBefore: Date;
  notAfter: Date;
  serialNumber: string;
  sha1Thumbprint: string;
  sha256Thumbprint: string;
  /** The PEM to send (one certificate; other text around it dropped). */
  pem: string;
}

interface Element {
  tag: number;
  /** Where the content starts and ends in the buffer. */
  start: number;
  end: number;
}

/** One TLV at `at`: definite lengths only (DER), never reading past `limit`. */
function element(der: Uint8Array, at: number, limit: number): Element {
  if (at + 2 > limit) throw new Error('The certificate is truncated.');
  const tag = der[at]!;
  let length = der[at + 1]!;
  let start = at + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4 || start + count > limit) throw new Error('The certificate has a length DER does not allow.');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + der[start + i]!;
    start += count;
  }
  if (start + length > limit) throw new Error('The certificate is truncated.');
  return { tag, start, end: start + length };
}

function children(der: Uint8Array, parent: Element): Element[] {
  const out: Element[] = [];
  for (let at = parent.start; at < parent.end; ) {
    const child = element(der, at, parent.end);
    out.push(child);
    at = child.end;
  }
  return out;
}

const ATTRIBUTE_NAMES: Record<string, string> = {
  '2.5.4.3': 'CN',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'S',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '1.2.840.113549.1.9.1': 'E',
};

function oid(bytes: Uint8Array): string {
  const parts = [Math.floor(bytes[0]! / 40), bytes[0]! % 40];
  let value = 0;
  for (const byte of bytes.subarray(1)) {
    value = value * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) {
      parts.push(value);
      value = 0;
    }
  }
  return parts.join('.');
}

/**
 * `CN=dev-1, O=Contoso`: the RDNs last first, as .NET and DPS write them and as the server's `info`
 * shows them (packages/model/src/certificates.ts), so the preview and the stored details read alike.
 */
function distinguishedName(der: Uint8Array, name: Element): string {
  const text = new TextDecoder();
  const parts: string[] = [];
  for (const rdn of children(der, name)) {
    for (const attribute of children(der, rdn)) {
      const [type, value] = children(der, attribute);
      if (!type || !value) continue;
      const id = oid(der.subarray(type.start, type.end));
      parts.push(`${ATTRIBUTE_NAMES[id] ?? id}=${text.decode(der.subarray(value.start, value.end))}`);
    }
  }
  return parts.reverse().join(', ');
}

/** UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ). */
function time(der: Uint8Array, at: Element): Date {
  const text = new TextDecoder().decode(der.subarray(at.start, at.end));
  const match = /^(\d{2}|\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (!match) throw new Error(`The certificate has a time DER does not allow: ${text}`);
  let year = Number(match[1]);
  if (match[1]!.length === 2) year += year < 50 ? 2000 : 1900;
  return new Date(Date.UTC(year, Number(match[2]) - 1, Number(match[3]), Number(match[4]), Number(match[5]), Number(match[6])));
}

const hex = (bytes: Uint8Array) => Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('').toUpperCase();

/** A serial number as OpenSSL (and so the server's `info`) writes it: hex, without the sign byte's leading zeros. */
function serialHex(bytes: Uint8Array): string {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  return hex(bytes.subarray(start));
}

/** The first certificate of PEM text (or bare base64 DER), as bytes. */
export function pemToDer(text: string): { der: Uint8Array<ArrayBuffer>; pem: string } {
  const match = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/.exec(text);
  const base64 = (match ? match[1]! : text).replace(/\s+/g, '');
  const refuse = () => new Error('This is not a PEM certificate (-----BEGIN CERTIFICATE----- …).');
  if (!base64 || !/^[A-Za-z0-9+/]+=*$/.test(base64)) throw refuse();
  let binary: string;
  try {
    binary = atob(base64);
  } catch {
    throw refuse();
  }
  const der = Uint8Array.from(binary, (char) => char.charCodeAt(0));
  const lines = base64.match(/.{1,64}/g) ?? [];
  return { der, pem: `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n` };
}

/** Parses a certificate's PEM; throws an Error in words when it is not one. */
export async function certificateDetails(text: string): Promise<CertificateDetails> {
  const { der, pem } = pemToDer(text);
  const certificate = element(der, 0, der.length);
  if (certificate.tag !== 0x30 || certificate.end !== der.length) throw new Error('This is not a DER certificate.');
  const [tbs] = children(der, certificate);
  if (!tbs || tbs.tag !== 0x30) throw new Error('This is not a DER certificate.');
  const fields = children(der, tbs);
  // version [0] is optional (v1 certificates leave it out).
  const at = fields[0]?.tag === 0xa0 ? 1 : 0;
  const [serial, , issuer, validity, subject] = fields.slice(at);
  if (!serial || !issuer || !validity || !subject) throw new Error('The certificate lacks a serial number, issuer, validity or subject.');
  const [notBefore, notAfter] = children(der, validity);
  if (!notBefore || !notAfter) throw new Error('The certificate has no validity period.');
  const [sha1, sha256] = await Promise.all([crypto.subtle.digest('SHA-1', der), crypto.subtle.digest('SHA-256', der)]);
  return {
    subject: distinguishedName(der, subject),
    issuer: distinguishedName(der, issuer),
    notBefore: time(der, notBefore),
    notAfter: time(der, notAfter),
    serialNumber: serialHex(der.subarray(serial.start, serial.end)),
    sha1Thumbprint: hex(new Uint8Array(sha1)),
    sha256Thumbprint: hex(new Uint8Array(sha256)),
    pem,
  };
}
