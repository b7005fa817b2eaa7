import type { X509Certificate } from 'node:crypto';
import { readElement } from '@opendps/model';

/**
 * node:crypto's X509Certificate tells whether a certificate is a CA (`ca`, OpenSSL's X509_check_ca)
 * but not its pathLenConstraint, so that one field is read from the DER (RFC 5280 §4.2.1.9).
 */
export interface BasicConstraints {
  ca: boolean;
  /** Absent when the extension sets no limit. */
  pathLength?: number;
}

type DerElement = ReturnType<typeof readElement>;

const TAG_SEQUENCE = 0x30;
const TAG_BOOLEAN = 0x01;
const TAG_INTEGER = 0x02;
const TAG_OID = 0x06;
const TAG_OCTET_STRING = 0x04;
const TAG_EXTENSIONS = 0xa3;
/** 2.5.29.19 basicConstraints. */
const OID_BASIC_CONSTRAINTS = Buffer.from([0x55, 0x1d, 0x13]);

function children(der: Buffer, parent: DerElement): DerElement[] {
  const result: DerElement[] = [];
  for (let offset = parent.start; offset < parent.end; ) {
    const element = readElement(der, offset);
    result.push(element);
    offset = element.end;
  }
  return result;
}

function extensionValue(der: Buffer, oid: Buffer): DerElement | undefined {
  const certificate = readElement(der, 0);
  const tbs = readElement(der, certificate.start);
  const wrapper = children(der, tbs).find((element) => element.tag === TAG_EXTENSIONS);
  if (!wrapper) return undefined;
  const list = readElement(der, wrapper.start);
  if (list.tag !== TAG_SEQUENCE) throw new RangeError('DER: extensions are not a sequence');
  for (const extension of children(der, list)) {
    const [id, ...rest] = children(der, extension);
    if (id?.tag !== TAG_OID || !der.subarray(id.start, id.end).equals(oid)) continue;
    const value = rest.find((element) => element.tag === TAG_OCTET_STRING);
    if (!value) throw new RangeError('DER: extension without a value');
    return readElement(der, value.start);
  }
  return undefined;
}

/**
 * The basicConstraints extension, or undefined when the certificate has none. Throws a RangeError on
 * DER that Node accepted but this reader cannot follow (callers turn it into a coded error).
 */
export function basicConstraints(x509: X509Certificate): BasicConstraints | undefined {
  const der = x509.raw;
  const value = extensionValue(der, OID_BASIC_CONSTRAINTS);
  if (!value) return undefined;
  if (value.tag !== TAG_SEQUENCE) throw new RangeError('DER: basicConstraints is not a sequence');
  let ca = false;
  let pathLength: number | undefined;
  for (const field of children(der, value)) {
    if (field.tag === TAG_BOOLEAN) ca = der[field.start] !== 0;
    if (field.tag === TAG_INTEGER) {
      const bytes = der.subarray(field.start, field.end);
      // A limit beyond 2^31 is no limit for any chain we accept.
      pathLength = bytes.length > 4 ? Number.MAX_SAFE_INTEGER : bytes.reduce((n, byte) => n * 256 + byte, 0);
    }
  }
  return { ca, ...(pathLength !== undefined ? { pathLength } : {}) };
}
