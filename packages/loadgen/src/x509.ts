import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';

/**
 * Device certificates issued on the fly from a CA the tester holds. node-forge cannot hold EC keys and
 * its RSA key generation costs ~100 ms a device, so the certificate is assembled here in DER: a P-256
 * key from node:crypto, signed by the CA key (RSA or EC) with node:crypto. Small on purpose: exactly the
 * fields a DPS X.509 enrollment group looks at (subject CN = registration id, issuer = the CA).
 */
export interface DeviceCertificateIssuer {
  issue(registrationId: string): { cert: string; key: string };
}

export function createDeviceCertificateIssuer(caCertPem: string, caKeyPem: string, now: () => number = Date.now): DeviceCertificateIssuer {
  const caCert = new X509Certificate(caCertPem);
  const caKey = createPrivateKey(caKeyPem);
  if (!caCert.checkPrivateKey(caKey)) throw new Error('the CA key does not belong to the CA certificate');
  const issuer = subjectOf(caCert.raw);
  const ec = caKey.asymmetricKeyType === 'ec';
  if (!ec && caKey.asymmetricKeyType !== 'rsa') throw new Error(`a CA key of type ${caKey.asymmetricKeyType} is not supported (RSA or EC)`);
  const signatureAlgorithm = seq(oid(ec ? '1.2.840.10045.4.3.2' : '1.2.840.113549.1.1.11'), ...(ec ? [] : [NULL]));
  return {
    issue(registrationId) {
      const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const spki = publicKey.export({ type: 'spki', format: 'der' });
      const serial = randomBytes(16);
      // Positive and with a non-zero first byte: DER forbids a leading zero byte (OpenSSL: illegal padding).
      serial[0] = ((serial[0] ?? 0) & 0x3f) | 0x40;
      const at = now();
      const tbs = seq(
        tlv(0xa0, integer(Buffer.from([2]))), // v3
        integer(serial),
        signatureAlgorithm,
        issuer,
        seq(time(new Date(at - 3600_000)), time(new Date(at + 30 * 86_400_000))),
        seq(set(seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from(registrationId, 'utf8'))))),
        spki,
        tlv(
          0xa3,
          seq(
            extension('2.5.29.19', true, seq()), // basicConstraints: not a CA
            extension('2.5.29.15', true, tlv(0x03, Buffer.from([0x07, 0x80]))), // keyUsage: digitalSignature
            extension('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.2'))), // extKeyUsage: clientAuth
            // No authorityKeyIdentifier: a key id that differed from the CA's own would break chain building.
            extension('2.5.29.14', false, tlv(0x04, keyIdentifier(publicKey))),
          ),
        ),
      );
      const signature = sign('sha256', tbs, caKey);
      const der = seq(tbs, signatureAlgorithm, tlv(0x03, Buffer.concat([Buffer.from([0]), signature])));
      return { cert: pem('CERTIFICATE', der), key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
    },
  };
}

const NULL = Buffer.from([0x05, 0x00]);

function tlv(tag: number, value: Buffer): Buffer {
  const length = value.length;
  let header: Buffer;
  if (length < 0x80) header = Buffer.from([tag, length]);
  else if (length < 0x100) header = Buffer.from([tag, 0x81, length]);
  else if (length < 0x10000) header = Buffer.from([tag, 0x82, length >> 8, length & 0xff]);
  else header = Buffer.from([tag, 0x83, length >> 16, (length >> 8) & 0xff, length & 0xff]);
  return Buffer.concat([header, value]);
}

const seq = (...items: Buffer[]) => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]) => tlv(0x31, Buffer.concat(items));
const integer = (value: Buffer) => tlv(0x02, value);

function oid(dotted: string): Buffer {
  const [first = 0, second = 0, ...rest] = dotted.split('.').map(Number);
  const bytes = [first * 40 + second];
  for (const arc of rest) {
    const chunk = [arc & 0x7f];
    for (let value = arc >>> 7; value > 0; value >>>= 7) chunk.unshift((value & 0x7f) | 0x80);
    bytes.push(...chunk);
  }
  return tlv(0x06, Buffer.from(bytes));
}

function time(date: Date): Buffer {
  const text = date.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
  return date.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(text.slice(2), 'ascii')) : tlv(0x18, Buffer.from(text, 'ascii'));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [Buffer.from([0x01, 0x01, 0xff])] : []), tlv(0x04, value));
}

function keyIdentifier(publicKey: KeyObject): Buffer {
  return createHash('sha1').update(publicKey.export({ type: 'spki', format: 'der' })).digest();
}

function pem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** The subject Name of a certificate, as the DER bytes the issuer field must repeat exactly. */
function subjectOf(certificate: Buffer): Buffer {
  const read = (buffer: Buffer, at: number) => {
    let length = buffer[at + 1] ?? 0;
    let header = 2;
    if (length & 0x80) {
      const octets = length & 0x7f;
      length = 0;
      for (let index = 0; index < octets; index += 1) length = (length << 8) | (buffer[at + 2 + index] ?? 0);
      header += octets;
    }
    return { tag: buffer[at] ?? 0, start: at + header, end: at + header + length };
  };
  const outer = read(certificate, 0);
  const tbs = read(certificate, outer.start);
  let at = tbs.start;
  const fields: Array<{ start: number; end: number; tag: number; from: number }> = [];
  while (at < tbs.end && fields.length < 6) {
    const field = read(certificate, at);
    fields.push({ ...field, from: at });
    at = field.end;
  }
  // version [0], serial, signature, issuer, validity, subject
  const subject = fields[(fields[0]?.tag === 0xa0 ? 5 : 4)];
  if (!subject) throw new Error('the CA certificate has no subject');
  return certificate.subarray(subject.from, subject.end);
}
