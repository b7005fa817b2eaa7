import { mergePatch, validateSection } from '../src/twin';
import { parseUsername } from '../src/device-auth';
import { classifyPublish } from '../src/topics';

describe('twin merge patch and validation', () => {
  it('merges objects, deletes on null, replaces arrays and never mutates its inputs', () => {
    const target = { a: 1, nested: { keep: true, drop: 1 }, list: [1, 2] };
    const patch = { nested: { drop: null, added: 'x' }, list: [3], a: null, b: { c: null } };
    expect(mergePatch(target, patch)).toEqual({ nested: { keep: true, added: 'x' }, list: [3], b: {} });
    expect(target).toEqual({ a: 1, nested: { keep: true, drop: 1 }, list: [1, 2] });
  });

  it('drops echoed $version/$metadata and refuses other $ keys, dots, nulls where not allowed and deep nesting', () => {
    expect(validateSection({ $version: 4, $metadata: {}, x: 1 }, 'patch', true)).toEqual({ x: 1 });
    expect(() => validateSection({ $evil: 1 }, 'patch', true)).toThrow(expect.objectContaining({ errorCode: 400002 }));
    expect(() => validateSection({ 'a.b': 1 }, 'patch', true)).toThrow(expect.objectContaining({ errorCode: 400002 }));
    expect(() => validateSection({ a: null }, 'desired', false)).toThrow(expect.objectContaining({ errorCode: 400002 }));
    // Counted as the service API counts an initial twin: 10 nested objects below the section pass, 11 do not.
    let deep: Record<string, unknown> = { leaf: 1 };
    for (let i = 0; i < 10; i++) deep = { level: deep };
    expect(() => validateSection(deep, 'patch', true)).not.toThrow();
    expect(() => validateSection({ level: deep }, 'patch', true)).toThrow(expect.objectContaining({ errorCode: 400002 }));
    expect(() => validateSection([1], 'patch', true)).toThrow(expect.objectContaining({ errorCode: 400002 }));
  });
});

describe('device MQTT usernames and topics', () => {
  it('parses the SDK username, older forms and module identities', () => {
    expect(parseUsername('localhost:8884/d1/?api-version=2021-04-12&DeviceClientType=x%2F1')).toEqual({ hostName: 'localhost:8884', deviceId: 'd1' });
    expect(parseUsername('hub.example/d1/api-version=2016-11-14')).toEqual({ hostName: 'hub.example', deviceId: 'd1' });
    expect(parseUsername('hub/d1/m1/?api-version=1')).toEqual({ hostName: 'hub', deviceId: 'd1', moduleId: 'm1' });
    expect(parseUsername('justahost')).toBeUndefined();
    expect(parseUsername(undefined)).toBeUndefined();
  });

  it('classifies only the device own topics', () => {
    expect(classifyPublish('d1', 'devices/d1/messages/events/%24.mid=1')).toEqual({ kind: 'telemetry', propertyBag: '%24.mid=1' });
    expect(classifyPublish('d1', 'devices/d2/messages/events/')).toBeUndefined();
    expect(classifyPublish('d1', '$iothub/twin/GET/?$rid=7')).toEqual({ kind: 'twinGet', rid: '7' });
    expect(classifyPublish('d1', '$iothub/twin/GET/')).toMatchObject({ kind: 'malformed' });
    expect(classifyPublish('d1', '$iothub/twin/PATCH/properties/desired/?$rid=1')).toBeUndefined();
    expect(classifyPublish('d1', '$iothub/methods/res/200/?$rid=9')).toEqual({ kind: 'methodResponse', rid: '9', status: 200 });
  });
});
