import { parseRequestTopic, parseUsername, responseTopic } from '../src';

describe('DPS topic and username grammar', () => {
  test('requests: register and operation status, $rid echoed as sent', () => {
    expect(parseRequestTopic('$dps/registrations/PUT/iotdps-register/?$rid=a%2Fb')).toEqual({ kind: 'register', rid: 'a%2Fb' });
    expect(parseRequestTopic('$dps/registrations/GET/iotdps-get-operationstatus/?$rid=7&operationId=4.abc.op-1')).toEqual({
      kind: 'operationStatus',
      rid: '7',
      operationId: '4.abc.op-1',
    });
    expect(parseRequestTopic('$dps/registrations/GET/iotdps-get-operationstatus/?operationId=x&$rid=8')).toMatchObject({ kind: 'operationStatus', rid: '8' });
  });

  test('no usable $rid: nothing to answer on', () => {
    expect(parseRequestTopic('devices/d1/messages/events/')).toBeUndefined();
    expect(parseRequestTopic('$dps/registrations/PUT/iotdps-register/')).toBeUndefined();
    expect(parseRequestTopic('$dps/registrations/PUT/iotdps-register/?$rid=')).toBeUndefined();
    expect(parseRequestTopic(`$dps/registrations/PUT/iotdps-register/?$rid=${'r'.repeat(129)}`)).toBeUndefined();
  });

  test('response topics keep the mandatory /? (docs/device-wire.md, trap 4)', () => {
    expect(responseTopic(202, 'x', 2)).toBe('$dps/registrations/res/202/?$rid=x&retry-after=2');
    expect(responseTopic(200, 'x')).toBe('$dps/registrations/res/200/?$rid=x');
  });

  test('usernames: Node and C SDK forms, anything else refused', () => {
    expect(parseUsername('0ne00000A0A/registrations/dev-1/api-version=2019-03-31&ClientVersion=azure-iot-provisioning-device%2F1.9.1')).toEqual({
      idScope: '0ne00000A0A',
      registrationId: 'dev-1',
      apiVersion: '2019-03-31',
      clientVersion: 'azure-iot-provisioning-device/1.9.1',
    });
    expect(parseUsername('0ne00000A0A/registrations/dev-1/api-version=2021-06-01')).toMatchObject({ apiVersion: '2021-06-01' });
    expect(parseUsername(undefined)).toBeUndefined();
    expect(parseUsername('localhost:8883/dev-1/?api-version=2021-04-12')).toBeUndefined();
    expect(parseUsername('0ne00000A0A/devices/dev-1/api-version=2019-03-31')).toBeUndefined();
    expect(parseUsername('0ne 0A/registrations/dev-1/api-version=2019-03-31')).toBeUndefined();
  });
});
