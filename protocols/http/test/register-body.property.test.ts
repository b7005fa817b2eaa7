import fc from 'fast-check';
import { DpsError } from '@opendps/model';
import { checkSameRegistration, decodeRegisterBody, type RegisterBody } from '@opendps/registration';

function deviceRegistrationBody(raw: Buffer, registrationId: string): RegisterBody {
  const body = decodeRegisterBody(raw);
  checkSameRegistration(registrationId, body.registrationId);
  return body;
}

/** Seeded, bounded: the device REST API decodes these bodies before any authentication. */
const RUNS = { seed: 1, numRuns: 300 };

describe('the device registration body on arbitrary bytes', () => {
  test('decodeRegisterBody: any bytes give a value or a coded error', () => {
    const json = fc.oneof(fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)), fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? '')));
    fc.assert(
      fc.property(json, fc.string({ maxLength: 20 }), (body, registrationId) => {
        try {
          deviceRegistrationBody(body, registrationId);
        } catch (error) {
          expect(error).toBeInstanceOf(DpsError);
        }
      }),
      { ...RUNS, numRuns: 1000 },
    );
  });

  test('a DeviceRegistration body round-trips', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z0-9-]{1,40}$/), fc.option(fc.jsonValue(), { nil: undefined }), (registrationId, payload) => {
        const sent = { registrationId, tpm: { endorsementKey: 'AAA=', storageRootKey: 'AAA=' }, ...(payload === undefined ? {} : { payload }) };
        expect(deviceRegistrationBody(Buffer.from(JSON.stringify(sent)), registrationId.toUpperCase())).toEqual(JSON.parse(JSON.stringify(sent)));
      }),
      RUNS,
    );
  });
});
