import { createHmac } from 'node:crypto';
import { deriveDeviceKey as serverDerive, parseSasToken, signatureMatches } from '@opendps/attestation';
import { generateSymmetricKey } from '@opendps/model';
import { deriveDeviceKey, dpsToken, hubToken, isKey } from '../src/fleet/device-keys';
import { editableDesired, mergePatchBetween, parseDesired } from '../src/fleet/twin';

/** The fleet's keys and tokens (WebCrypto, as in the browser: Node 20 has the same API) and its twin editing helpers. */
describe('device keys and tokens', () => {
  it('derives a group device key exactly as the server verifies it', async () => {
    const groupKey = generateSymmetricKey();
    for (const registrationId of ['m-1', 'press-20', 'a.b:c_d']) {
      expect(await deriveDeviceKey(groupKey, registrationId)).toBe(serverDerive(groupKey, registrationId));
    }
  });

  it('signs the DPS token over the unencoded resource with skn=registration, and the hub token over the encoded one', async () => {
    const key = generateSymmetricKey();
    const dps = parseSasToken(await dpsToken('0ne00000001', 'm-1', key));
    expect(dps.resource).toBe('0ne00000001/registrations/m-1');
    expect(dps.keyName).toBe('registration');
    expect(signatureMatches(dps, key)).toBe(true);
    const hubText = await hubToken('hub-1.localhost:8883', 'm-1', key);
    const sr = /sr=([^&]+)/.exec(hubText)?.[1] ?? '';
    expect(sr).toBe(encodeURIComponent('hub-1.localhost:8883/devices/m-1'));
    const se = /se=(\d+)/.exec(hubText)?.[1] ?? '';
    const sig = decodeURIComponent(/sig=([^&]+)/.exec(hubText)?.[1] ?? '');
    expect(sig).toBe(createHmac('sha256', Buffer.from(key, 'base64')).update(`${sr}\n${se}`).digest('base64'));
    expect(hubText).not.toContain('skn=');
  });

  it('accepts base64 keys of 16 to 64 bytes only', () => {
    expect(isKey(Buffer.alloc(16, 1).toString('base64'))).toBe(true);
    expect(isKey(Buffer.alloc(32, 1).toString('base64'))).toBe(true);
    expect(isKey(generateSymmetricKey())).toBe(true);
    expect(isKey(Buffer.alloc(15, 1).toString('base64'))).toBe(false);
    expect(isKey(Buffer.alloc(65, 1).toString('base64'))).toBe(false);
    expect(isKey('not a key')).toBe(false);
    expect(isKey('')).toBe(false);
  });
});

describe('desired properties in the editor', () => {
  it('drops $version and $metadata for editing', () => {
    expect(editableDesired({ a: 1, $version: 3, $metadata: { a: {} } })).toEqual({ a: 1 });
    expect(editableDesired(undefined)).toEqual({});
  });

  it('turns an edit into the merge patch that makes it: changes, additions, removals as null, nested objects', () => {
    const before = { interval: 5, mode: 'eco', nested: { a: 1, b: 2 }, list: [1, 2] };
    expect(mergePatchBetween(before, before)).toBeUndefined();
    expect(mergePatchBetween(before, { interval: 30, nested: { a: 1, c: 3 }, list: [1, 2], added: true })).toEqual({
      interval: 30,
      mode: null,
      nested: { b: null, c: 3 },
      added: true,
    });
    expect(mergePatchBetween(before, { ...before, list: [2] })).toEqual({ list: [2] });
    expect(mergePatchBetween({ nested: { a: 1 } }, { nested: 'flat' })).toEqual({ nested: 'flat' });
  });

  it('says in words what is wrong with the text', () => {
    expect(parseDesired('{"interval": 30}')).toEqual({ value: { interval: 30 } });
    expect(parseDesired('{"interval": ')).toMatchObject({ error: expect.stringMatching(/^Not JSON/) });
    expect(parseDesired('[1]')).toMatchObject({ error: expect.stringContaining('JSON object') });
    expect(parseDesired('null')).toMatchObject({ error: expect.stringContaining('JSON object') });
    expect(parseDesired('{"$version": 2}')).toMatchObject({ error: expect.stringContaining('reserved') });
  });
});
