import { createSasToken, deriveDeviceKey, parseSasToken, verifySasToken } from '@opendps/attestation';

const key = Buffer.alloc(32, 7).toString('base64');
const resource = '0ne00000A0A/registrations/dev-1';
const future = Math.floor(Date.now() / 1000) + 3600;

function code(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (error) {
    return (error as { errorCode?: number }).errorCode;
  }
  return undefined;
}

describe('SAS tokens', () => {
  it('derives the documented group key test vector', () => {
    expect(
      deriveDeviceKey(
        '8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==',
        'sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6',
      ),
    ).toBe('Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=');
  });

  it.each([
    ['raw sr (Node symmetric key)', false],
    ['encoded sr (TPM, C SDK)', true],
  ])('verifies %s with fields in any order', (_name, encodeResource) => {
    const token = createSasToken({ resource, key, keyName: 'registration', expiry: future, encodeResource });
    const [prefix, fields] = token.split(' ');
    const reordered = `${prefix} ${fields!.split('&').reverse().join('&')}`;
    expect(verifySasToken(parseSasToken(reordered), { expectedResource: resource, keys: [key] })).toBe(0);
  });

  it('reports which key signed, primary or secondary', () => {
    const secondary = Buffer.alloc(32, 9).toString('base64');
    const token = parseSasToken(createSasToken({ resource, key: secondary, expiry: future }));
    expect(verifySasToken(token, { expectedResource: resource, keys: [key, secondary] })).toBe(1);
  });

  it('refuses a forged, expired, misdirected or malformed token with its code', () => {
    const other = Buffer.alloc(32, 1).toString('base64');
    const forged = parseSasToken(createSasToken({ resource, key: other, expiry: future }));
    expect(code(() => verifySasToken(forged, { expectedResource: resource, keys: [key] }))).toBe(401002);
    const expired = parseSasToken(createSasToken({ resource, key, expiry: 1000 }));
    expect(code(() => verifySasToken(expired, { expectedResource: resource, keys: [key] }))).toBe(401003);
    const elsewhere = parseSasToken(createSasToken({ resource: '0ne00000A0A/registrations/dev-2', key, expiry: future }));
    expect(code(() => verifySasToken(elsewhere, { expectedResource: resource, keys: [key] }))).toBe(401005);
    expect(code(() => parseSasToken('Bearer abc'))).toBe(401006);
    expect(code(() => parseSasToken('SharedAccessSignature sr=a&sig=b'))).toBe(401006);
    expect(code(() => parseSasToken('SharedAccessSignature sr=a&sig=%E0%A4%A&se=1'))).toBe(401006);
  });

  it('matches service tokens by path-segment prefix', () => {
    const token = parseSasToken(createSasToken({ resource: 'localhost', key, keyName: 'provisioningserviceowner', expiry: future }));
    expect(verifySasToken(token, { expectedResource: 'localhost/enrollments/x', keys: [key], prefixMatch: true })).toBe(0);
    const near = parseSasToken(createSasToken({ resource: 'local', key, expiry: future }));
    expect(code(() => verifySasToken(near, { expectedResource: 'localhost/enrollments/x', keys: [key], prefixMatch: true }))).toBe(401005);
  });
});
