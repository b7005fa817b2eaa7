import { DpsError } from '@opendps/model';
import { decodeRegisterBody, registrationRequest, type RegisterEnvelope } from '@opendps/registration';

const envelope: RegisterEnvelope = { idScope: '0ne00000A0A', registrationId: 'dev-1', proof: { kind: 'none' }, transport: 'mqtt' };

function codeOf(run: () => unknown): number | undefined {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(DpsError);
    return (error as DpsError).errorCode;
  }
  return undefined;
}

describe('the one decoder of device register requests', () => {
  test('an empty or blank body is a register without payload', () => {
    expect(decodeRegisterBody(undefined)).toEqual({});
    expect(decodeRegisterBody(Buffer.alloc(0))).toEqual({});
    expect(decodeRegisterBody(Buffer.from(' \n'))).toEqual({});
    expect(decodeRegisterBody(Buffer.from('null'))).toEqual({});
  });

  test('size, then JSON, then field types, each with its code', () => {
    expect(codeOf(() => decodeRegisterBody(Buffer.from('{"a":1}'), 3))).toBe(413001);
    expect(codeOf(() => decodeRegisterBody(Buffer.from('{nope')))).toBe(400001);
    expect(codeOf(() => decodeRegisterBody(Buffer.from('[1]')))).toBe(400002);
    expect(codeOf(() => decodeRegisterBody(Buffer.from('{"registrationId":7}')))).toBe(400002);
    expect(codeOf(() => decodeRegisterBody(Buffer.from('{"forceRegistration":"yes"}')))).toBe(400002);
    expect(codeOf(() => decodeRegisterBody(Buffer.from('{"tpm":{}}')))).toBe(400002);
  });

  test('the body may name the registration in another case, never another registration', () => {
    expect(registrationRequest(envelope, { registrationId: 'DEV-1' }).registrationId).toBe('dev-1');
    expect(codeOf(() => registrationRequest(envelope, { registrationId: 'dev-2' }))).toBe(400009);
  });

  test('payload passes through; forceRegistration from the body or from outside it (boolean or its text)', () => {
    expect(registrationRequest(envelope, { payload: { fw: 1 } })).toMatchObject({ payload: { fw: 1 } });
    expect(registrationRequest(envelope, {})).not.toHaveProperty('forceRegistration');
    expect(registrationRequest(envelope, { forceRegistration: true }).forceRegistration).toBe(true);
    expect(registrationRequest({ ...envelope, forceRegistration: 'TRUE' }, {}).forceRegistration).toBe(true);
    expect(registrationRequest({ ...envelope, forceRegistration: false }, { forceRegistration: false }).forceRegistration).toBe(false);
    expect(codeOf(() => registrationRequest({ ...envelope, forceRegistration: 'yes' }, {}))).toBe(400002);
  });

  test('api-version: absent or any dated version is accepted, anything else is 400002', () => {
    expect(registrationRequest(envelope, {})).not.toHaveProperty('apiVersion');
    expect(registrationRequest({ ...envelope, apiVersion: '2019-03-31' }, {}).apiVersion).toBe('2019-03-31');
    expect(registrationRequest({ ...envelope, apiVersion: '2025-07-01-preview' }, {}).apiVersion).toBe('2025-07-01-preview');
    expect(codeOf(() => registrationRequest({ ...envelope, apiVersion: 'banana' }, {}))).toBe(400002);
  });
});
