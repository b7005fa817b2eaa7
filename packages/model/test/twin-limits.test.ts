import { DpsError, TWIN_LIMITS, assertTwinSection, validateIndividualEnrollment, webhookAddressRefusal } from '@opendps/model';

function errorCode(run: () => unknown): number | undefined {
  try {
    run();
  } catch (error) {
    return error instanceof DpsError ? error.errorCode : -1;
  }
  return undefined;
}

describe('assertTwinSection', () => {
  it('refuses nesting far past any stack at the eleventh level, without recursing into it', () => {
    let deep: Record<string, unknown> = { leaf: 1 };
    for (let i = 0; i < 200_000; i++) deep = { a: deep };
    // a coded 400, not a RangeError from an exhausted stack (errorCode -1)
    expect(errorCode(() => assertTwinSection(deep, 'tags', TWIN_LIMITS.tagsBytes))).toBe(400017);
  });

  it('counts size as IoT Hub does: key and string bytes, 8 per number, 4 per boolean, top-level $ keys excluded', () => {
    const keys = Array.from({ length: 682 }, (_, i) => `k${String(i).padStart(3, '0')}`);
    // 682 keys of 4 bytes with numbers: 682 * 12 = 8,184 bytes, under 8 KB; one boolean more passes 8,192
    const section: Record<string, unknown> = Object.fromEntries(keys.map((key) => [key, 1]));
    expect(() => assertTwinSection(section, 'tags', TWIN_LIMITS.tagsBytes)).not.toThrow();
    expect(errorCode(() => assertTwinSection({ ...section, b: true, x: true }, 'tags', TWIN_LIMITS.tagsBytes))).toBe(400017);
    expect(() => assertTwinSection({ ...section, $metadata: { big: 'x'.repeat(4000) } }, 'tags', TWIN_LIMITS.tagsBytes)).not.toThrow();
  });

  it('is applied by enrollment validation to tags and desired properties', () => {
    const base = { registrationId: 'r', attestation: { type: 'symmetricKey' } };
    expect(errorCode(() => validateIndividualEnrollment({ ...base, initialTwin: { tags: { 'a.b': 1 } } }))).toBe(400017);
    expect(errorCode(() => validateIndividualEnrollment({ ...base, initialTwin: { properties: { desired: { s: 'x'.repeat(4097) } } } }))).toBe(400017);
    expect(validateIndividualEnrollment({ ...base, initialTwin: { properties: { desired: { s: 'x'.repeat(4096) } } } }).initialTwin).toBeDefined();
  });
});

describe('webhookAddressRefusal', () => {
  it.each([
    ['169.254.169.254', 'a link-local address'],
    ['169.254.0.1', 'a link-local address'],
    ['fe80::1', 'a link-local address'],
    ['febf::1', 'a link-local address'],
    ['fd00:ec2::254', 'a cloud metadata address'],
    ['100.100.100.200', 'a cloud metadata address'],
    ['::ffff:169.254.169.254', 'a link-local address'],
    ['[::ffff:a9fe:a9fe]', 'a link-local address'],
  ])('refuses %s as %s, unless link-local is allowed', (address, reason) => {
    expect(webhookAddressRefusal(address)).toBe(reason);
    expect(webhookAddressRefusal(address, { allowLinkLocal: true })).toBeUndefined();
  });

  it.each(['127.0.0.1', '10.0.0.1', '169.255.0.1', 'fec0::1', '2001:db8::1', '100.100.100.201'])('lets %s through', (address) => {
    expect(webhookAddressRefusal(address)).toBeUndefined();
  });
});
