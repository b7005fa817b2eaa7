/**
 * The console's operations pages in headless Chromium against a real OpenDPS (docs/console.md
 * "Hubs", "Instances", "Live view", "Keyboard, themes and phone width"): an instance added and
 * removed, a hub linked that new devices (the unmodified Node SDK over MQTT) must go to, the live
 * view counting them, dark mode, phone width, keyboard, and axe on each page in both themes.
 */
import { generateSymmetricKey } from '@opendps/model';
import type { Page } from 'playwright-core';
import { DESKTOP, PHONE, screenshot, seriousViolations, signIn, useConsoleFixture } from './support/console';
import { portOf, registerWithSdk, type DpsEndpoints } from './support/devices';
import { serviceClient } from './support/opendps';

const fixture = useConsoleFixture({ colorScheme: 'light', signInAs: 'admin' });
let page: Page;
let errors: string[];
let endpoints: DpsEndpoints;

beforeAll(() => {
  ({ page, errors } = fixture);
  endpoints = { mqttPort: portOf(fixture.dps.connection.endpoints.mqtt), httpsPort: portOf(fixture.dps.connection.endpoints.https), ca: fixture.dps.ca };
});

const service = (connectionString = fixture.dps.connection.serviceConnectionString) => serviceClient(connectionString, fixture.dps.connection.endpoints.https, fixture.dps.ca);

async function go(title: string, heading: string): Promise<void> {
  await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: title, exact: true }).click();
  await page.getByRole('heading', { level: 1, name: heading }).waitFor();
}

/** Enrolls `count` symmetric-key devices with the service SDK and registers each with the device SDK over MQTT. */
async function registerDevices(prefix: string, count: number): Promise<{ registrationId: string; assignedHub: string }[]> {
  const results: { registrationId: string; assignedHub: string }[] = [];
  for (let i = 0; i < count; i++) {
    const registrationId = `${prefix}-${i}`;
    const key = generateSymmetricKey();
    await service().createOrUpdateIndividualEnrollment({
      registrationId,
      attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: generateSymmetricKey() } },
    } as never);
    const result = await registerWithSdk('mqtt', endpoints, fixture.dps.connection.idScope, { kind: 'symmetricKey', registrationId, key });
    expect(result.status).toBe('assigned');
    results.push({ registrationId, assignedHub: result.assignedHub });
  }
  return results;
}

// Page expressions are strings evaluated over the DevTools protocol (the test project has no DOM
// types; waitForFunction with a string would need 'unsafe-eval', which the console's CSP forbids).
const cell = (measure: string, column: number) => page.locator(`tr[data-measure="${measure}"] td`).nth(column);

it('adds an instance, shows its service connection string (which the service SDK accepts), removes it; the last one is refused in words', async () => {
  await go('Instances', 'Instances');
  expect(await seriousViolations(page)).toEqual([]);
  await page.getByRole('button', { name: 'Add an instance' }).click();
  await page.getByLabel('Name', { exact: true }).fill('ops-second');
  await page.getByLabel('Allocation policy').selectOption('static');
  await page.getByLabel('Registrations per second').fill('250');
  await page.getByRole('button', { name: 'Add instance' }).click();
  const shown = page.getByRole('textbox', { name: 'Service connection string of ops-second' });
  await shown.waitFor();
  const connectionString = await shown.inputValue();
  expect(connectionString).toMatch(/^HostName=[^;]+;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=/);
  const row = page.locator('tr[data-instance="ops-second"]');
  await row.waitFor();
  expect(await row.textContent()).toContain('static');
  expect(await row.textContent()).toContain('registrationsPerSecond 250');
  // The key shown is the new instance's: the unmodified service SDK reads its (empty) enrollments with it.
  const query = service(connectionString).createIndividualEnrollmentQuery({ query: 'SELECT * FROM enrollments' });
  expect((await query.next()).responseBody).toEqual([]);
  // The header's instance switcher lists it.
  await page.getByRole('combobox', { name: 'Instance', exact: true }).getByRole('option', { name: 'ops-second' }).waitFor({ state: 'attached' });

  await page.getByRole('button', { name: 'Remove ops-second' }).click();
  const dialog = page.getByRole('dialog', { name: 'Remove ops-second?' });
  await dialog.waitFor();
  expect(await seriousViolations(page)).toEqual([]);
  await dialog.getByRole('button', { name: 'Remove' }).click();
  await row.waitFor({ state: 'detached' });
  await expect(service(connectionString).createIndividualEnrollmentQuery({ query: 'SELECT * FROM enrollments' }).next()).rejects.toBeDefined();

  await page.getByRole('button', { name: 'Remove default' }).click();
  await page.getByRole('dialog', { name: 'Remove default?' }).getByRole('button', { name: 'Remove' }).click();
  const alert = page.getByRole('alert');
  await alert.filter({ hasText: 'HTTP 409' }).waitFor();
  expect(await alert.textContent()).toMatch(/last provisioning instance cannot be removed.*\(error 409\d{3}, HTTP 409\)/);
  expect(await page.locator('tr[data-instance="default"]').count()).toBe(1);
});

it('links a second built-in hub that new devices must go to; the registration records and the page say so', async () => {
  await go('Hubs', 'Linked hubs');
  await page.locator('tr[data-hub]').first().waitFor();
  expect(await page.locator('tr[data-hub]').count()).toBe(1);
  const first = (await page.locator('tr[data-hub] th').first().textContent()) ?? '';

  // Bad input: a coded refusal in words, and nothing linked.
  await page.getByRole('button', { name: 'Link a hub' }).click();
  // The form takes the focus on its first field (keyboard users land in it).
  await page.getByRole('textbox', { name: 'Name', exact: true }).and(page.locator(':focus')).waitFor();
  await page.getByLabel('Name', { exact: true }).fill('broken');
  await page.getByLabel('An Azure IoT Hub (or another hub) by its connection string').check();
  await page.getByRole('textbox', { name: 'Connection string' }).fill('not a connection string');
  await page.getByRole('button', { name: 'Link hub', exact: true }).click();
  await page.getByRole('alert').filter({ hasText: 'HTTP 400' }).waitFor();
  expect(await page.getByRole('alert').textContent()).toMatch(/error 400\d{3}/);
  expect(await page.locator('tr[data-hub="broken"]').count()).toBe(0);
  await page.getByRole('button', { name: 'Dismiss the error' }).click();

  await page.getByLabel('A built-in hub, served by OpenDPS').check();
  await page.getByLabel('Name', { exact: true }).fill('hub-2');
  await page.getByLabel('Allocation weight').fill('5');
  await page.getByLabel(/^Location/).fill('westeurope');
  await page.getByRole('button', { name: 'Link hub', exact: true }).click();
  const linked = page.locator('tr[data-hub="hub-2"]');
  await linked.waitFor();
  expect(await linked.textContent()).toContain('westeurope');
  const hostName = (await linked.locator('code').textContent()) ?? '';
  expect(hostName).toMatch(/\S/);

  // The first hub no longer applies the allocation policy: hashed allocation has hub-2 alone to choose.
  await page.getByRole('button', { name: `Edit ${first}` }).click();
  await page.getByRole('spinbutton', { name: 'Allocation weight' }).and(page.locator(':focus')).waitFor();
  await page.getByLabel(/^Apply the allocation policy/).uncheck();
  await page.getByRole('button', { name: 'Save' }).click();
  await page.locator(`tr[data-hub="${first}"]`).filter({ hasText: 'not applied' }).waitFor();

  const devices = await registerDevices('ops-hub', 3);
  for (const device of devices) {
    expect(device.assignedHub).toBe(hostName);
    const { responseBody: record } = await service().getDeviceRegistrationState(device.registrationId);
    expect((record as { assignedHub: string }).assignedHub).toBe(hostName);
  }
  // Opened again, the page reads the counts: three devices went to hub-2.
  await go('Live', 'Live view');
  await go('Hubs', 'Linked hubs');
  await page.locator('tr[data-hub="hub-2"] td').nth(5).filter({ hasText: /^3$/ }).waitFor();
  expect(await seriousViolations(page)).toEqual([]);
  await screenshot(page, 'hubs-desktop');
});

it('moves focus to the page after navigating, and the skip link reaches it from the keyboard', async () => {
  await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Instances' }).press('Enter');
  await page.getByRole('heading', { level: 1, name: 'Instances' }).waitFor();
  // Effects run after the paint: wait for the focus to move, then check where it is.
  await page.locator('#main:focus').waitFor({ timeout: 5000 }).catch(() => undefined);
  expect(await page.evaluate('document.activeElement?.id')).toBe('main');
  // A fresh load (keys are not remembered, so sign in again): the first Tab lands on the skip link.
  await page.reload();
  await signIn(page, fixture.dps.server.connection.adminConnectionString);
  await page.keyboard.press('Tab');
  expect(await page.evaluate('document.activeElement?.textContent')).toBe('Skip to content');
  await page.keyboard.press('Enter');
  await page.locator('#main:focus').waitFor({ timeout: 5000 }).catch(() => undefined);
  expect(await page.evaluate('document.activeElement?.id')).toBe('main');
});

it('the live view counts registrations as they happen: rates above zero, charts drawn, at desktop and phone width', async () => {
  await go('Live', 'Live view');
  // A rate needs two readings; register after the page has its second.
  await cell('Registrations', 0).filter({ hasText: /^\d/ }).waitFor();
  await registerDevices('ops-live', 2);
  await cell('Registrations assigned', 0).filter({ hasText: /^\d/, hasNotText: /^0\.00$/ }).waitFor();
  expect(Number(await cell('Registrations over mqtt', 1).textContent())).toBeGreaterThanOrEqual(5);
  expect(Number(await cell('Assigned to hub-2', 1).textContent())).toBeGreaterThanOrEqual(5);
  await page.locator('tr[data-measure="latency p50"] td').filter({ hasText: /ms$/ }).waitFor();
  // Lines are drawn, and each chart names its latest values for screen readers.
  expect(await page.locator('path.chart-line').count()).toBeGreaterThan(0);
  expect(await page.getByRole('img', { name: /Registrations per second by status, latest: assigned/ }).count()).toBe(1);
  expect(await page.getByRole('listitem').filter({ hasText: 'hub-2' }).count()).toBeGreaterThan(0);
  expect(await seriousViolations(page)).toEqual([]);
  await screenshot(page, 'live-desktop');

  await page.setViewportSize(PHONE);
  expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(PHONE.width);
  expect(await seriousViolations(page)).toEqual([]);
  await screenshot(page, 'live-phone');
  for (const [title, heading] of [
    ['Hubs', 'Linked hubs'],
    ['Instances', 'Instances'],
  ]) {
    await go(title!, heading!);
    const width = await page.evaluate<number>('document.documentElement.scrollWidth');
    expect({ page: title, fits: width <= PHONE.width }).toEqual({ page: title, fits: true });
  }
  await page.setViewportSize(DESKTOP);
});

it('turns dark on request, and stays readable (axe) on the hubs, instances and live pages', async () => {
  const light = await page.evaluate('getComputedStyle(document.body).backgroundColor');
  expect(light).toBe('rgb(247, 248, 250)');
  const toggle = page.getByRole('button', { name: /^Theme:/ });
  for (let i = 0; i < 3 && !(await toggle.getAttribute('aria-label'))?.startsWith('Theme: dark'); i++) await toggle.click();
  expect(await toggle.getAttribute('aria-label')).toMatch(/^Theme: dark/);
  // The theme is applied by an effect, after the button's own render.
  await page.locator('html[data-theme="dark"]').waitFor({ state: 'attached' });
  expect(await page.evaluate('getComputedStyle(document.body).backgroundColor')).toBe('rgb(15, 19, 24)');
  for (const [title, heading] of [
    ['Hubs', 'Linked hubs'],
    ['Instances', 'Instances'],
    ['Live', 'Live view'],
  ]) {
    await go(title!, heading!);
    expect({ page: title, violations: await seriousViolations(page) }).toEqual({ page: title, violations: [] });
  }
  await cell('Registrations', 0).filter({ hasText: /^\d/ }).waitFor();
  expect(await page.evaluate("getComputedStyle(document.querySelector('figure.chart')).backgroundColor")).toBe('rgb(23, 28, 34)');
  await screenshot(page, 'live-dark-desktop');
  // The refusals above (400, 409) are logged by Chromium as failed loads; anything else is a fault.
  expect(errors.filter((error) => !/^Failed to load resource: the server responded with a status of 40[09]/.test(error))).toEqual([]);
});
