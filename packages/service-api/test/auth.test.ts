import { createSasToken } from '@opendps/attestation';
import { DpsError } from '@opendps/model';
import { authenticate, authorize } from '../src/auth';
import { instance, policy, token } from './helpers';

const ownerA = policy('provisioningserviceowner');
const readerA = policy('reader', ['EnrollmentRead']);
const ownerB = policy('provisioningserviceowner');
const instances = [instance('a', '0ne0000000A', [ownerA, readerA]), instance('b', '0ne0000000B', [ownerB])];

function code(run: () => unknown): number | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    return (error as DpsError).errorCode;
  }
}

describe('authenticate', () => {
  it('finds the instance by the key that signed the token, with either key of the policy', () => {
    expect(authenticate(token(ownerA), instances, '/enrollments/x').instance.name).toBe('a');
    expect(authenticate(token(ownerB), instances, '/enrollments/x').instance.name).toBe('b');
    expect(authenticate(token(ownerB, { key: ownerB.secondaryKey }), instances, '/enrollments/x').instance.name).toBe('b');
    expect(authenticate(token(readerA), instances, '/enrollments/x').policy.keyName).toBe('reader');
  });

  it('accepts sr as a path-segment prefix of host/path, encoded or not', () => {
    const forOne = createSasToken({ resource: 'localhost/enrollments/dev-1', key: ownerA.primaryKey, keyName: ownerA.keyName, expiry: Date.now() / 1000 + 60 | 0, encodeResource: true });
    expect(authenticate(forOne, instances, '/enrollments/dev-1').instance.name).toBe('a');
    expect(code(() => authenticate(forOne, instances, '/enrollments/dev-10'))).toBe(401005);
    expect(code(() => authenticate(token(ownerA, { resource: 'otherhost' }), instances, '/enrollments/x'))).toBe(401005);
  });

  it('refuses missing, malformed, unsigned and expired tokens with their codes', () => {
    expect(code(() => authenticate(undefined, instances, '/enrollments/x'))).toBe(401000);
    expect(code(() => authenticate('Bearer abc', instances, '/enrollments/x'))).toBe(401006);
    expect(code(() => authenticate(token(ownerA).replace(/&skn=[^&]+/, ''), instances, '/enrollments/x'))).toBe(401006);
    expect(code(() => authenticate(token(readerA, { key: ownerB.primaryKey }), instances, '/enrollments/x'))).toBe(401002);
    expect(code(() => authenticate(token(ownerA, { key: readerA.primaryKey }), instances, '/enrollments/x'))).toBe(401002);
    // a real key under another policy's name does not verify
    expect(code(() => authenticate(token({ ...readerA, keyName: 'provisioningserviceowner' }), instances, '/x'))).toBe(401002);
    expect(code(() => authenticate(token(ownerA, { expiry: Math.floor(Date.now() / 1000) - 3600 }), instances, '/enrollments/x'))).toBe(401003);
  });
});

describe('authorize', () => {
  it('requires the policy to hold the right', () => {
    const reader = authenticate(token(readerA), instances, '/enrollments/x');
    expect(() => authorize(reader, 'EnrollmentRead')).not.toThrow();
    expect(code(() => authorize(reader, 'EnrollmentWrite'))).toBe(401004);
  });
});
