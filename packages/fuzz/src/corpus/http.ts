import { mutate } from '../mutate';
import type { Rng } from '../rng';
import type { CorpusContext } from './context';

/** HTTP/1.1 requests as raw bytes, pipelined on one connection, then abused. */
export function request(method: string, path: string, headers: Array<[string, string]>, body = ''): Buffer {
  const lines = [`${method} ${path} HTTP/1.1`, 'Host: localhost', ...headers.map(([k, v]) => `${k}: ${v}`)];
  if (body && !headers.some(([k]) => /content-length|transfer-encoding/i.test(k))) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body}`, 'latin1');
}

/** Device REST API and service API requests the server answers (docs/service-rest.md). */
export function deviceAndServiceRequests(ctx: CorpusContext, rng: Rng): Buffer[] {
  const reg = `/${ctx.idScope}/registrations/${ctx.registrationId}`;
  const json: Array<[string, string]> = [['Content-Type', 'application/json']];
  const device: Array<[string, string]> = [...json, ['Authorization', ctx.deviceToken]];
  const service: Array<[string, string]> = [...json, ['Authorization', ctx.serviceToken]];
  return [
    request('PUT', `${reg}/register?api-version=2021-06-01`, device, JSON.stringify({ registrationId: ctx.registrationId })),
    request('GET', `${reg}/operations/${rng.bytes(8).toString('hex')}?api-version=2021-06-01`, device),
    request('POST', `${reg}?api-version=2021-06-01`, device, JSON.stringify({ registrationId: ctx.registrationId, tpm: { endorsementKey: rng.bytes(rng.size(300)).toString('base64') } })),
    request('GET', `/enrollments/${ctx.registrationId}?api-version=2021-10-01`, service),
    request('PUT', `/enrollments/fuzz-${rng.int(50)}?api-version=2021-10-01`, service, JSON.stringify({ registrationId: `fuzz-${rng.int(50)}`, attestation: { type: rng.pick(['symmetricKey', 'x509', 'tpm', 'nope']), x509: { clientCertificates: { primary: { certificate: rng.bytes(rng.size(600)).toString('base64') } } } } })),
    request('POST', '/enrollments/query?api-version=2021-10-01', [...service, ['x-ms-max-item-count', rng.pick(['1', '-1', '99999999999', 'x'])]], JSON.stringify({ query: '*' })),
    request('POST', '/enrollmentGroups/query?api-version=2021-10-01', service, '{"query":"SELECT * FROM enrollmentGroups"}'),
    request('POST', '/enrollments?api-version=2021-10-01', service, JSON.stringify({ mode: 'create', enrollments: Array.from({ length: rng.size(20) }, (_, i) => ({ registrationId: `b${i}` })) })),
    request('DELETE', `/registrations/fuzz-${rng.int(50)}?api-version=2021-10-01`, service),
    request('GET', '/certificates?api-version=2021-10-01', service),
    request('GET', '/admin/instances', service),
    request('GET', `/${rng.bytes(rng.size(30)).toString('hex')}`, []),
    request('PUT', `${reg}/register?api-version=2021-06-01`, device, `{"registrationId":"${ctx.registrationId}","payload":${deepJson(rng.pick([12, 40000]))}}`),
    request('PUT', `/enrollments/fuzz-${rng.int(50)}?api-version=2021-10-01`, service, `{"registrationId":"x","attestation":{"type":"symmetricKey"},"initialTwin":{"tags":${deepJson(rng.pick([12, 40000]))}}}`),
  ];
}

/** JSON nested `depth` levels deep (arrays and objects), to find recursion without a bound. */
export function deepJson(depth: number): string {
  return '[{"a":'.repeat(Math.floor(depth / 2)) + '1' + '}]'.repeat(Math.floor(depth / 2));
}

/** Built-in hub REST (the subset the azure-iothub Registry uses). */
export function hubRequests(ctx: CorpusContext, rng: Rng): Buffer[] {
  const auth: Array<[string, string]> = [['Authorization', ctx.hubServiceToken], ['Content-Type', 'application/json']];
  const id = rng.pick([ctx.registrationId, `fz${rng.int(20)}`, '%00', '..%2f..']);
  return [
    request('GET', `/devices/${id}?api-version=2021-04-12`, auth),
    request('PUT', `/devices/${id}?api-version=2021-04-12`, auth, JSON.stringify({ deviceId: id, authentication: { type: 'sas' } })),
    request('GET', `/twins/${id}?api-version=2021-04-12`, auth),
    request('PATCH', `/twins/${id}?api-version=2021-04-12`, auth, '{"properties":{"desired":' + '{"a":'.repeat(rng.size(300)) + '1}}'),
    request('DELETE', `/devices/${id}?api-version=2021-04-12`, [...auth, ['If-Match', '*']]),
    request('PATCH', `/twins/${id}?api-version=2021-04-12`, auth, `{"tags":{"a":${deepJson(rng.pick([12, 2000, 40000]))}}}`),
    request('PUT', `/twins/${id}?api-version=2021-04-12`, auth, `{"properties":{"desired":{"a":${deepJson(rng.pick([12, 40000]))}}}}`),
  ];
}

/** Header abuse, chunked encoding abuse and bodies that never match their declared length. */
function httpTrick(rng: Rng, valid: Buffer): Buffer {
  const text = valid.toString('latin1');
  const split = text.indexOf('\r\n\r\n');
  const head = split < 0 ? text : text.slice(0, split);
  const body = split < 0 ? '' : text.slice(split + 4);
  const withHeaders = (extra: string[], newBody = body) => Buffer.from(`${head}\r\n${extra.join('\r\n')}\r\n\r\n${newBody}`, 'latin1');
  switch (rng.int(12)) {
    case 0:
      return withHeaders([`X-Long: ${'a'.repeat(rng.pick([100, 9000, 20000, 70000]))}`]);
    case 1:
      return withHeaders(Array.from({ length: rng.pick([50, 200, 2500]) }, (_, i) => `X-H${i}: v`));
    case 2:
      return withHeaders(['Content-Length: 5', 'Content-Length: 7']);
    case 3:
      return withHeaders(['Transfer-Encoding: chunked', 'Content-Length: 3'], '3\r\nabc\r\n0\r\n\r\n');
    case 4:
      return withHeaders(['Transfer-Encoding: chunked'], `${rng.pick(['ffffffffffffffff', 'fffffff', '-1', 'zz', '0x10', '1;' + 'e'.repeat(5000)])}\r\nab\r\n`);
    case 5:
      return withHeaders(['Transfer-Encoding: chunked'], Array.from({ length: rng.pick([10, 500]) }, () => '1\r\na\r\n').join('') + '0\r\n' + 'T: x\r\n'.repeat(rng.int(100)) + '\r\n');
    case 6:
      return withHeaders([`Content-Length: ${rng.pick(['99999999999999999999', '-5', '1e9', '0x20', '104857600'])}`], body.slice(0, 10));
    case 7:
      return Buffer.from(`${rng.pick(['GET', 'PUT', 'BREW', 'G\0T', ''])} ${rng.pick(['/', '*', 'http://x/', '/%', '/' + 'a'.repeat(9000)])} HTTP/${rng.pick(['1.1', '1.0', '0.9', '2.0', '9'])}\r\n\r\n`, 'latin1');
    case 8:
      return withHeaders(['Bad Header: x', 'X-Nul: a\0b', 'X-Fold: a\r\n continued']);
    case 9:
      return Buffer.from(`${head.replace(/\r\n/g, '\n')}\n\n${body}`, 'latin1'); // bare LF
    case 10:
      return withHeaders([`Authorization: SharedAccessSignature ${'sr=a&'.repeat(rng.pick([10, 2000]))}sig=${'A'.repeat(rng.size(4000))}`]);
    default:
      return withHeaders(['Content-Encoding: gzip', 'Expect: 100-continue'], rng.bytes(rng.size(256)).toString('latin1'));
  }
}

export function httpConnection(rng: Rng, valid: Buffer[]): Buffer[] {
  if (rng.chance(0.1)) return [rng.bytes(1 + rng.size(2048))];
  const frames: Buffer[] = [];
  for (let n = 1 + rng.int(30); n > 0; n--) {
    const base = rng.pick(valid);
    const roll = rng.next();
    frames.push(roll < 0.5 ? base : roll < 0.8 ? httpTrick(rng, base) : mutate(rng, base));
  }
  return frames;
}
