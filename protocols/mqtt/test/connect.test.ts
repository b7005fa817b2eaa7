import { decideConnect, IDENTIFIER_REJECTED } from '../src/connect';

const context = { transport: 'mqtt' as const };
const username = (registrationId: string) => `0ne00000A0A/registrations/${registrationId}/api-version=2021-06-01&ClientVersion=test`;
const password = Buffer.from('SharedAccessSignature sr=x&sig=y&se=1&skn=registration');

describe('CONNECT', () => {
  test('the client id names the registration of the username, in any case (registration ids are case-insensitive)', () => {
    expect(decideConnect({ clientId: 'Dev-1', username: username('dev-1'), password, context })).toMatchObject({
      accepted: true,
      device: { idScope: '0ne00000A0A', registrationId: 'dev-1', apiVersion: '2021-06-01' },
    });
  });

  test('a client id naming another registration is refused', () => {
    expect(decideConnect({ clientId: 'dev-2', username: username('dev-1'), password, context })).toMatchObject({
      accepted: false,
      returnCode: IDENTIFIER_REJECTED,
    });
  });
});
