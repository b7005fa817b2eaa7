/**
 * The console's enrollment pages in headless Chromium against a real OpenDPS (docs/console.md
 * "Enrollments, groups and registrations"): create with keys generated in the page, paging and
 * search over more than a page, an etag conflict between two tabs, the twin editor's refusals (the
 * same rules as the server's, checked on the same cases), bulk import with a bad row, and the
 * registration records and decision traces of devices registered for real with the Node SDK.
 */
import { createHmac, randomBytes, X509Certificate } from 'node:crypto';
import { assertTwinSection, certificateInfo, parseCertificate, TWIN_LIMITS } from '@opendps/model';
import { createSasToken } from '@opendps/attestation';
import { createLeaf, createRootCa } from '@opendps/pki';
import type { IndividualEnrollment, EnrollmentGroup } from 'azure-iot-provisioning-service/dist/interfaces';
import type { ProvisioningServiceClient } from 'azure-iot-provisioning-service';
import { parseCsv } from '../packages/console/src/components/csv';
import { twinSectionProblem } from '../packages/console/src/components/twin';
import { certificateDetails } from '../packages/console/src/components/x509';
import type { Page } from 'playwright-core';
import { DESKTOP, PHONE, screenshot, seriousViolations, useConsoleFixture } from './support/console';
import { portOf, rawHttps, registerWithSdk } from './support/devices';
import { endorsementKey } from './support/endorsement-key';
import { serviceClient } from './support/opendps';

const fixture = useConsoleFixture();
let service: ProvisioningServiceClient;

beforeAll(() => {
  service = serviceClient(fixture.dps.connection.serviceConnectionString, fixture.dps.connection.endpoints.https, fixture.dps.ca);
});

const key = () => randomBytes(32).toString('base64');

async function signedIn(viewport = DESKTOP, hash = '') {
  const opened = await fixture.openSignedIn({ viewport });
  if (hash) await go(opened.page, hash);
  return opened;
}

/** Follows a console link (hash route) in the same document, as clicking one would. */
async function go(page: Page, hash: string): Promise<void> {
  await page.evaluate((next) => ((globalThis as unknown as { location: { hash: string } }).location.hash = next), hash);
}

function createEnrollment(registrationId: string, fields: Partial<IndividualEnrollment> = {}, primaryKey = key()) {
  return service.createOrUpdateIndividualEnrollment({ registrationId, attestation: { type: 'symmetricKey', symmetricKey: { primaryKey, secondaryKey: key() } }, ...fields } as IndividualEnrollment);
}

describe('the initial twin editor applies the server rules', () => {
  const deep = (levels: number): Record<string, unknown> => (levels === 0 ? { leaf: 1 } : { nest: deep(levels - 1) });
  const cases: [string, Record<string, unknown>, number][] = [
    ['an ordinary section', { model: 'thermostat', interval: 30, on: true, list: [1, 'two', { three: 3 }] }, TWIN_LIMITS.desiredBytes],
    // deep(n) puts its innermost object n levels below the section.
    ['nesting at the limit', deep(TWIN_LIMITS.maxDepth), TWIN_LIMITS.desiredBytes],
    ['nesting over the limit', deep(TWIN_LIMITS.maxDepth + 1), TWIN_LIMITS.desiredBytes],
    ['a dot in a key', { 'a.b': 1 }, TWIN_LIMITS.desiredBytes],
    ['a $ key below the top', { a: { $b: 1 } }, TWIN_LIMITS.desiredBytes],
    ['a $ key at the top (read-only metadata)', { $version: 3, a: 1 }, TWIN_LIMITS.desiredBytes],
    ['a space in a key', { 'a b': 1 }, TWIN_LIMITS.desiredBytes],
    ['a string of 4 KB in multi-byte characters', { s: 'é'.repeat(2048) }, TWIN_LIMITS.desiredBytes],
    ['a string over 4 KB in multi-byte characters', { s: 'é'.repeat(2049) }, TWIN_LIMITS.desiredBytes],
    ['an integer out of range', { n: 2 ** 53 }, TWIN_LIMITS.desiredBytes],
    ['tags over 8 KB', Object.fromEntries(Array.from({ length: 3 }, (_, i) => [`k${i}`, 'x'.repeat(3000)])), TWIN_LIMITS.tagsBytes],
    ['a key over 1 KB', { ['k'.repeat(1025)]: 1 }, TWIN_LIMITS.desiredBytes],
  ];
  it.each(cases)('%s: the console and the server agree', (_name, section, limit) => {
    let server: string | undefined;
    try {
      assertTwinSection(section, 'initialTwin.properties.desired', limit);
    } catch (error) {
      server = (error as Error).message;
    }
    expect(twinSectionProblem(section, 'initialTwin.properties.desired', limit)).toBe(server);
  });
  it('refuses what it should (the cases are not all accepted)', () => {
    const refused = cases.filter(([, section, limit]) => twinSectionProblem(section, 'f', limit) !== undefined).map(([name]) => name);
    expect(refused).toEqual(['nesting over the limit', 'a dot in a key', 'a $ key below the top', 'a space in a key', 'a string over 4 KB in multi-byte characters', 'an integer out of range', 'tags over 8 KB', 'a key over 1 KB']);
  });
});

describe("the page's certificate preview reads what the server reads", () => {
  const root = createRootCa({ commonName: 'Preview Root', organization: 'OpenDPS tests' });
  const certificates = [
    ['a root CA', root.certificatePem],
    ['an RSA device certificate', createLeaf(root, { commonName: 'rsa-dev', organization: 'Fleet' }).certificatePem],
    ['an EC device certificate', createLeaf(root, { commonName: 'ec-dev', keyType: 'ec' }).certificatePem],
  ] as const;
  it.each(certificates)('%s: subject, issuer, validity, serial and thumbprints as in the server info', async (_name, pem) => {
    const info = certificateInfo(parseCertificate(pem));
    const details = await certificateDetails(pem);
    expect({
      subjectName: details.subject,
      issuerName: details.issuer,
      serialNumber: details.serialNumber,
      sha1Thumbprint: details.sha1Thumbprint,
      sha256Thumbprint: details.sha256Thumbprint,
      notBefore: details.notBefore.getTime(),
      notAfter: details.notAfter.getTime(),
    }).toEqual({
      subjectName: info.subjectName,
      issuerName: info.issuerName,
      serialNumber: info.serialNumber,
      sha1Thumbprint: info.sha1Thumbprint,
      sha256Thumbprint: info.sha256Thumbprint,
      notBefore: new Date(info.notBeforeUtc).getTime(),
      notAfter: new Date(info.notAfterUtc).getTime(),
    });
  });
  it('refuses every truncation and garbage with an Error in words, never a crash or a wrong answer', async () => {
    const der = new X509Certificate(root.certificatePem).raw;
    const pemOf = (bytes: Buffer) => `-----BEGIN CERTIFICATE-----\n${bytes.toString('base64')}\n-----END CERTIFICATE-----`;
    for (let length = 0; length < der.length; length += 7) {
      await expect(certificateDetails(pemOf(der.subarray(0, length)))).rejects.toThrow(/certificate|PEM/);
    }
    // A length field that claims more than the input holds.
    await expect(certificateDetails(pemOf(Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x30, 0x00])))).rejects.toThrow('truncated');
    await expect(certificateDetails('hello')).rejects.toThrow('not a PEM certificate');
    await expect(certificateDetails(pemOf(randomBytes(300)))).rejects.toThrow(Error);
  });
});

describe('the bulk import reads CSV as RFC 4180 writes it', () => {
  it('takes quotes, doubled quotes, commas and line breaks inside fields, CRLF and blank lines', () => {
    expect(parseCsv('registrationId,deviceId\r\n"dev,1","say ""hi""\nthere"\r\n\r\ndev-2,\n')).toEqual([
      { registrationId: 'dev,1', deviceId: 'say "hi"\nthere' },
      { registrationId: 'dev-2', deviceId: '' },
    ]);
    expect(parseCsv('registrationId\ndev-3')).toEqual([{ registrationId: 'dev-3' }]);
    expect(parseCsv('')).toEqual([]);
  });
  it('says so when a quoted field never ends', () => {
    expect(() => parseCsv('registrationId\n"dev-1')).toThrow('ends inside a quoted field');
  });
});

it('creates an individual enrollment with a key generated in the page, and a group', async () => {
  const { page, errors } = await signedIn(DESKTOP, '#/enrollments/new');
  await page.getByLabel('Registration ID').fill('console-dev-1');
  await page.getByRole('button', { name: 'Generate primary key' }).click();
  const generated = await page.getByLabel('Primary key', { exact: true }).inputValue();
  expect(Buffer.from(generated, 'base64')).toHaveLength(64);
  expect(await page.getByLabel('Primary key', { exact: true }).getAttribute('type')).toBe('password');
  expect(await seriousViolations(page)).toEqual([]);
  await page.getByRole('button', { name: 'Create enrollment' }).click();
  await page.getByRole('status').filter({ hasText: 'Saved enrollment console-dev-1' }).waitFor();
  const mechanism = (await service.getIndividualEnrollmentAttestationMechanism('console-dev-1')).responseBody;
  expect(mechanism.symmetricKey?.primaryKey).toBe(generated);

  await go(page, '#/groups/new');
  await page.getByLabel('Group ID').fill('console-grp-1');
  await page.getByRole('button', { name: 'Create group' }).click();
  await page.getByRole('status').filter({ hasText: 'Saved group console-grp-1' }).waitFor();
  // Then the page opens the group as stored (its heading shows once it is read back).
  await page.getByRole('heading', { name: 'Group console-grp-1' }).waitFor();
  // The server generated the keys; the page shows them (masked) once read back.
  expect(await page.getByLabel('Primary key', { exact: true }).inputValue()).toMatch(/^[A-Za-z0-9+/]{86}==$/);
  const group = (await service.getEnrollmentGroup('console-grp-1')).responseBody as EnrollmentGroup;
  expect(group.attestation.type).toBe('symmetricKey');
  expect(await seriousViolations(page)).toEqual([]);

  // Creating an id that exists is refused (never an overwrite), in words with the DPS code.
  await go(page, '#/enrollments/new');
  await page.getByLabel('Registration ID').fill('console-dev-1');
  await page.getByRole('button', { name: 'Create enrollment' }).click();
  expect(await page.getByRole('alert').textContent()).toContain('error 409001, HTTP 409');
  expect((await service.getIndividualEnrollmentAttestationMechanism('console-dev-1')).responseBody.symmetricKey?.primaryKey).toBe(generated);
  expect(errors).toEqual([]);
  await page.close();
});

it('creates a TPM enrollment with its endorsement key, and refuses a key that is no TPM2B_PUBLIC', async () => {
  const ek = endorsementKey();
  const { page } = await signedIn(DESKTOP, '#/enrollments/new');
  await page.getByLabel('Registration ID').fill('console-tpm-1');
  await page.getByLabel('Attestation').selectOption('tpm');
  await page.getByLabel('Endorsement key (base64 TPM2B_PUBLIC)').fill(Buffer.from('not a key').toString('base64'));
  await page.getByRole('button', { name: 'Create enrollment' }).click();
  expect(await page.getByRole('alert').textContent()).toContain('error 400011, HTTP 400');
  await page.getByLabel('Endorsement key (base64 TPM2B_PUBLIC)').fill(ek);
  await page.getByRole('button', { name: 'Create enrollment' }).click();
  await page.getByRole('status').filter({ hasText: 'Saved enrollment console-tpm-1' }).waitFor();
  const stored = (await service.getIndividualEnrollment('console-tpm-1')).responseBody as IndividualEnrollment;
  expect(stored.attestation.tpm?.endorsementKey).toBe(ek);
  // Groups offer no TPM (individual enrollments only).
  await go(page, '#/groups/new');
  await page.getByLabel('Group ID').waitFor();
  expect(await page.getByLabel('Attestation').locator('option[value="tpm"]').count()).toBe(0);
  await page.close();
});

it('pages through and searches a list longer than a page', async () => {
  for (let i = 0; i < 30; i++) await createEnrollment(`page-dev-${String(i).padStart(2, '0')}`);
  for (const viewport of [DESKTOP, PHONE]) {
    const { page } = await signedIn(viewport, '#/enrollments');
    const rows = page.locator('.data-table tbody tr');
    await page.getByRole('status').filter({ hasText: 'Page 1' }).waitFor();
    expect(await rows.count()).toBe(10);
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, `enrollments-${viewport === DESKTOP ? 'desktop' : 'phone'}`);
    if (viewport === PHONE) {
      await page.close();
      break;
    }
    const firstPage = await rows.first().textContent();
    await page.getByRole('button', { name: 'Next page' }).click();
    await page.getByRole('status').filter({ hasText: 'Page 2' }).waitFor();
    expect(await rows.first().textContent()).not.toBe(firstPage);
    await page.getByRole('button', { name: 'Previous page' }).click();
    await page.getByRole('status').filter({ hasText: 'Page 1' }).waitFor();
    expect(await rows.first().textContent()).toBe(firstPage);
    // The last one created sits on a later page; the search finds it.
    await page.getByLabel('Search by registration id').fill('page-dev-29');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.getByRole('link', { name: 'page-dev-29', exact: true }).waitFor();
    expect(await rows.count()).toBe(1);
    await page.getByLabel('Search by registration id').fill('no-such-device');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.getByText('Nothing matches "no-such-device".').waitFor();
    await page.close();
  }
}, 60_000);

it('says when a save loses to an edit made elsewhere, and reloads', async () => {
  await createEnrollment('conflict-dev');
  const first = await signedIn(DESKTOP, '#/enrollments/conflict-dev');
  const second = await signedIn(DESKTOP, '#/enrollments/conflict-dev');
  for (const { page } of [first, second]) await page.getByLabel('Device ID (optional)').waitFor();
  await first.page.getByLabel('Device ID (optional)').fill('first-tab');
  await first.page.getByRole('button', { name: 'Save' }).click();
  await first.page.getByRole('status').filter({ hasText: 'Saved enrollment conflict-dev' }).waitFor();

  await second.page.getByLabel('Device ID (optional)').fill('second-tab');
  await second.page.getByRole('button', { name: 'Save' }).click();
  const alert = second.page.getByRole('alert').filter({ hasText: 'changed since you opened it' });
  await alert.waitFor();
  expect(await alert.textContent()).toContain('error 412001, HTTP 412');
  expect(((await service.getIndividualEnrollment('conflict-dev')).responseBody as IndividualEnrollment).deviceId).toBe('first-tab');
  await second.page.getByRole('button', { name: 'Reload' }).click();
  await alert.waitFor({ state: 'detached' });
  expect(await second.page.getByLabel('Device ID (optional)').inputValue()).toBe('first-tab');
  await first.page.close();
  await second.page.close();
});

it('refuses an invalid initial twin in the page, and saves a valid one', async () => {
  await createEnrollment('twin-dev');
  // At phone width in dark mode: the form still passes axe (contrast included).
  const { page } = await signedIn(PHONE, '#/enrollments/twin-dev');
  await page.emulateMedia({ colorScheme: 'dark' });
  const editor = page.getByLabel('Initial twin (JSON)');
  await editor.fill('{"properties": {"desired": {"a.b": 1}}}');
  await page.getByText("'initialTwin.properties.desired.a.b' is not a valid property name").waitFor();
  expect(await editor.getAttribute('aria-invalid')).toBe('true');
  expect(await page.getByRole('button', { name: 'Save' }).isDisabled()).toBe(true);
  expect(await seriousViolations(page)).toEqual([]);
  await screenshot(page, 'enrollment-form-phone-dark');
  await editor.fill('{"tags": ');
  await page.getByText('Not valid JSON').waitFor();
  await editor.fill('{"tags": {"floor": 3}, "properties": {"desired": {"interval": 30}}}');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByRole('status').filter({ hasText: 'Saved enrollment twin-dev' }).waitFor();
  const saved = (await service.getIndividualEnrollment('twin-dev')).responseBody as IndividualEnrollment;
  expect(saved.initialTwin).toMatchObject({ tags: { floor: 3 }, properties: { desired: { interval: 30 } } });
  await page.close();
});

it('imports enrollments in bulk from CSV, with a result per row', async () => {
  const { page } = await signedIn(DESKTOP, '#/enrollments');
  await page.getByText('Bulk import from CSV or JSON').click();
  const csv = ['registrationId,provisioningStatus,deviceId', 'bulk-a,enabled,', 'bad/id,enabled,', 'bulk-b,disabled,bulk-b-device'].join('\n');
  await page.getByLabel('Or paste CSV or JSON').fill(csv);
  await page.getByRole('button', { name: 'Import' }).click();
  await page.getByText('Import results: 2 of 3 rows succeeded').waitFor();
  const results = page.locator('.bulk tbody tr');
  expect(await results.nth(0).textContent()).toContain('Created');
  expect(await results.nth(1).textContent()).toMatch(/bad\/id.*error 400003/);
  expect(((await service.getIndividualEnrollment('bulk-b')).responseBody as IndividualEnrollment).provisioningStatus).toBe('disabled');
  // JSON that is not an array of enrollments is refused in words before anything is sent.
  await page.getByLabel('Or paste CSV or JSON').fill('{"nothing": 1}');
  await page.getByRole('button', { name: 'Import' }).click();
  await page.getByRole('alert').filter({ hasText: 'The import cannot be read' }).waitFor();
  await page.close();
});

it("shows registration records and decision traces of real devices: assigned, disabled, and a group's", async () => {
  const endpoints = { mqttPort: portOf(fixture.dps.connection.endpoints.mqtt), httpsPort: portOf(fixture.dps.connection.endpoints.https), ca: fixture.dps.ca };
  const idScope = fixture.dps.connection.idScope;
  // A second hub, three times the weight of the first, so the trace has candidates to weigh.
  const admin = new Map(fixture.dps.server.connection.adminConnectionString.split(';').map((part) => [part.slice(0, part.indexOf('=')), part.slice(part.indexOf('=') + 1)]));
  const linked = await rawHttps({
    port: endpoints.httpsPort,
    ca: fixture.dps.ca,
    method: 'PUT',
    path: '/admin/instances/default/hubs/hub-2',
    headers: {
      authorization: createSasToken({ resource: admin.get('HostName') ?? '', key: admin.get('SharedAccessKey') ?? '', keyName: admin.get('SharedAccessKeyName') ?? '', expiry: Math.floor(Date.now() / 1000) + 600 }),
      'content-type': 'application/json',
    },
    body: JSON.stringify({ builtin: { hostName: 'hub-2.localhost' }, allocationWeight: 3 }),
  });
  expect(linked.status).toBe(201);
  const okKey = key();
  await createEnrollment('trace-ok', {}, okKey);
  const offKey = key();
  await createEnrollment('trace-off', { provisioningStatus: 'disabled' }, offKey);
  const groupKey = randomBytes(64).toString('base64');
  await service.createOrUpdateEnrollmentGroup({ enrollmentGroupId: 'trace-grp', attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: groupKey, secondaryKey: key() } } } as EnrollmentGroup);
  const derived = (id: string) => createHmac('sha256', Buffer.from(groupKey, 'base64')).update(id).digest('base64');

  const assigned = await registerWithSdk('mqtt', endpoints, idScope, { kind: 'symmetricKey', registrationId: 'trace-ok', key: okKey });
  expect(assigned.assignedHub).toBeTruthy();
  // The device is told "disabled": the SDK rejects, and the trace of that refusal is what the page shows.
  const refused = await registerWithSdk('mqtt', endpoints, idScope, { kind: 'symmetricKey', registrationId: 'trace-off', key: offKey }).then(
    () => 'assigned',
    (error: Error) => error.message,
  );
  expect(refused).toMatch(/disabled/i);
  for (const id of ['grp-dev-1', 'grp-dev-2']) await registerWithSdk('http', endpoints, idScope, { kind: 'symmetricKey', registrationId: id, key: derived(id) });

  for (const viewport of [DESKTOP, PHONE]) {
    const { page, errors } = await signedIn(viewport, '#/registrations/trace-ok');
    await page.getByRole('heading', { name: `Assigned to ${assigned.assignedHub} as device trace-ok` }).waitFor();
    expect(await page.locator('.record').textContent()).toContain(assigned.assignedHub);
    const rows = page.locator('table.candidates tbody tr');
    expect(await rows.count()).toBe(2);
    expect(await rows.filter({ hasText: 'hub-1' }).locator('td').nth(2).textContent()).toBe('1');
    expect(await rows.filter({ hasText: 'hub-2' }).locator('td').nth(2).textContent()).toBe('3');
    const chosen = page.locator('table.candidates tr.chosen');
    expect(await chosen.count()).toBe(1);
    expect(await chosen.textContent()).toContain('(chosen)');
    expect(assigned.assignedHub).toContain(await chosen.locator('td').nth(1).textContent());
    expect(await page.getByText('matched by individual enrollment trace-ok').count()).toBe(1);
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, `trace-${viewport === DESKTOP ? 'desktop' : 'phone'}`);
    expect(errors).toEqual([]);
    await page.close();
  }

  // The enrollment list links each registered enrollment to its record.
  const { page } = await signedIn(DESKTOP, '#/enrollments');
  await page.getByLabel('Search by registration id').fill('trace-ok');
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await page.getByRole('link', { name: 'Record and trace of trace-ok' }).click();
  await page.getByRole('heading', { name: 'Registration trace-ok' }).waitFor();

  // Left at once for another record: the page must follow the hash it changed to while it mounted.
  await go(page, '#/registrations/trace-off');
  await page.getByRole('heading', { name: /Refused: the enrollment is disabled/ }).waitFor();
  expect(await page.locator('.record').textContent()).toContain('disabled');

  // The group's registrations, listed and linked to their traces.
  await go(page, '#/registrations?group=trace-grp');
  await page.getByRole('link', { name: 'grp-dev-2' }).click();
  await page.getByRole('heading', { name: /Assigned to .* as device grp-dev-2/ }).waitFor();
  expect(await page.getByText('matched by enrollment group trace-grp').count()).toBe(1);
  expect(await seriousViolations(page)).toEqual([]);

  // Deleting the record (and its trace).
  // Escape leaves the dialog without deleting, and focus goes back to the page (keyboard only).
  await page.getByRole('button', { name: 'Delete registration record' }).click();
  await page.getByRole('dialog').waitFor();
  await page.keyboard.press('Escape');
  await page.getByRole('dialog').waitFor({ state: 'hidden' });
  expect((await service.getDeviceRegistrationState('grp-dev-2')).responseBody.status).toBe('assigned');
  await page.getByRole('button', { name: 'Delete registration record' }).focus();
  await page.keyboard.press('Enter');
  await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('status').filter({ hasText: 'was deleted' }).waitFor();
  await expect(service.getDeviceRegistrationState('grp-dev-2')).rejects.toBeDefined();
  await page.close();
}, 90_000);
