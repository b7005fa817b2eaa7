/**
 * The console's Device fleet and Hub devices pages (docs/console.md) in headless Chromium against a
 * real OpenDPS: simulated devices in the tab register over MQTT/WS and AMQP/WS, connect to their
 * built-in hub, send telemetry and receive a desired-property change made on Hub devices; a shared
 * link opens the fleet with an enrollment's parameters. axe-core and screenshots on both pages.
 */
import { generateSymmetricKey } from '@opendps/model';
import type { Page } from 'playwright-core';
import { DESKTOP, PHONE, screenshot, seriousViolations, useConsoleFixture } from './support/console';
import { serviceClient } from './support/opendps';

let page: Page;
let errors: string[];
const GROUP = 'fleet-group';
const SOLO = 'fleet-solo';
const mqttIds = Array.from({ length: 20 }, (_, i) => `m-${i + 1}`);
const amqpIds = Array.from({ length: 5 }, (_, i) => `a-${i + 1}`);

const service = () => serviceClient(fixture.dps.connection.serviceConnectionString, fixture.dps.connection.endpoints.https, fixture.dps.ca);
const consoleUrl = () => fixture.url;
const hub = () => {
  const found = fixture.dps.server.hubs.get('hub-1');
  if (!found) throw new Error('no hub-1');
  return found;
};

const fixture = useConsoleFixture({
  signInAs: 'service',
  // The fleet page lists enrollments as it opens: these exist before it does.
  prepare: async () => {
    await service().createOrUpdateEnrollmentGroup({
      enrollmentGroupId: GROUP,
      attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: generateSymmetricKey(), secondaryKey: generateSymmetricKey() } },
      initialTwin: { properties: { desired: { interval: 5 } } },
    } as never);
    await service().createOrUpdateIndividualEnrollment({
      registrationId: SOLO,
      attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: generateSymmetricKey(), secondaryKey: generateSymmetricKey() } },
    } as never);
  },
});

beforeAll(() => {
  ({ page, errors } = fixture);
});

/** Waits (polling, bounded) for a server-side state the page caused. */
async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
}

const summary = (page: Page) => page.locator('.fleet-summary');
/**
 * What page-side predicates see of the DOM (the suites are typed without the DOM library). Functions,
 * not strings: the console's CSP forbids eval, which string predicates need.
 */
interface PageDocument {
  getElementById(id: string): { value: string } | null;
  querySelectorAll(selector: string): ArrayLike<{ children: ArrayLike<{ textContent: string | null }> }>;
  documentElement: { scrollWidth: number };
}
const fieldIncludes = (page: Page, id: string, text: string) =>
  page.waitForFunction(([id, text]) => ((globalThis as unknown as { document: PageDocument }).document.getElementById(id)?.value ?? '').includes(text), [id, text] as const);
const keyFilled = (page: Page) =>
  page.waitForFunction(() => ((globalThis as unknown as { document: PageDocument }).document.getElementById('fleet-key')?.value.length ?? 0) > 0);
const row = (page: Page, registrationId: string) => page.locator(`tr[data-registration-id="${registrationId}"]`);

async function startDevices(page: Page, options: { count: number; prefix: string; transport: 'mqtt' | 'amqp' }): Promise<void> {
  await page.getByLabel('Devices', { exact: true }).fill(String(options.count));
  await page.getByLabel('Registration id prefix').fill(options.prefix);
  await page.getByLabel('Transport to DPS').selectOption(options.transport);
  await page.getByRole('button', { name: 'Start devices' }).click();
}

it('runs 20 devices of a group over MQTT/WS and 5 over AMQP/WS: all assigned, connected to the hub, sending telemetry', async () => {
  await page.getByRole('link', { name: 'Device fleet' }).click();
  await page.getByLabel('Group', { exact: true }).selectOption(GROUP);
  // The group key is read with attestationmechanism when the group is chosen.
  await keyFilled(page);
  await page.getByLabel('Telemetry per device (messages a minute)').fill('60');
  await startDevices(page, { count: 20, prefix: 'm-', transport: 'mqtt' });
  await startDevices(page, { count: 5, prefix: 'a-', transport: 'amqp' });
  await summary(page).filter({ hasText: '25 devices: 25 assigned, 0 failed, 25 connected' }).waitFor({ timeout: 60_000 });

  // The page: every row connected, its hub named, its transport shown.
  for (const id of [...mqttIds, ...amqpIds]) {
    expect(await row(page, id).locator('.chip').textContent()).toBe('connected');
    expect(await row(page, id).textContent()).toContain(fixture.dps.connection.endpoints.hubs[0]);
  }
  expect(await row(page, 'a-1').textContent()).toContain('AMQP/WS');
  expect(await row(page, 'm-1').textContent()).toContain('MQTT/WS');
  // The initial twin arrived with the twin read.
  expect(await row(page, 'm-1').locator('.fleet-desired code').textContent()).toBe('{"interval":5}');

  // The server: a registration record per device, assigned to the hub…
  for (const id of [...mqttIds, ...amqpIds]) {
    const state = (await service().getDeviceRegistrationState(id)).responseBody as unknown as { status: string; assignedHub: string; deviceId: string };
    expect(state).toMatchObject({ status: 'assigned', assignedHub: fixture.dps.connection.endpoints.hubs[0], deviceId: id });
  }
  // …and telemetry at the hub from each (a device counts a message sent once the hub acknowledged it).
  await page.waitForFunction(() =>
    Array.from((globalThis as unknown as { document: PageDocument }).document.querySelectorAll('.fleet-table tbody tr')).every((tr) => Number(tr.children[4]?.textContent) >= 1),
  );
  for (const id of [...mqttIds, ...amqpIds]) expect(hub().telemetryCount(id)).toBeGreaterThanOrEqual(1);
  const message = hub().receivedMessages('a-3')[0];
  expect(JSON.parse(message?.payload.toString('utf8') ?? '{}')).toMatchObject({ registrationId: 'a-3', sequence: 1 });
  expect(message?.properties).toMatchObject({ '$.ct': 'application/json' });

  // The share link carries the group's parameters, not its key unless asked.
  await page.getByText('Share these devices').click();
  const link = await page.getByLabel('Link to this page with these settings').inputValue();
  expect(link).toContain(`#/fleet?group=${GROUP}&count=5&prefix=a-&transport=amqp&rate=60`);
  expect(link).not.toContain('key=');
  await page.getByLabel('Include the key in the link').check();
  expect(await page.getByLabel('Link to this page with these settings').inputValue()).toContain('&key=');

  expect(await seriousViolations(page)).toEqual([]);
  await screenshot(page, 'fleet-desktop');
  await page.setViewportSize(PHONE);
  // The table scrolls inside its frame; the page itself stays phone-wide.
  expect(await page.evaluate(() => (globalThis as unknown as { document: PageDocument }).document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
  expect(await seriousViolations(page)).toEqual([]);
  await screenshot(page, 'fleet-phone');
  await page.setViewportSize(DESKTOP);
}, 120_000);

it('edits a twin on Hub devices; the in-browser device shows the desired change as it arrives', async () => {
  await row(page, 'm-7').getByRole('link', { name: 'Edit the twin of m-7' }).click();
  const editor = page.getByLabel('Desired properties (JSON)');
  await fieldIncludes(page, 'twin-desired', '"interval": 5');
  // Bad JSON is said in words and cannot be saved.
  await editor.fill('{"interval": ');
  expect(await page.locator('#twin-desired-error').textContent()).toContain('Not JSON');
  expect(await page.getByRole('button', { name: 'Save desired properties' }).isDisabled()).toBe(true);
  await editor.fill('{"interval": 30, "mode": "eco"}');
  await page.getByRole('button', { name: 'Save desired properties' }).click();
  await page.getByText(/Saved as desired version \d+; the device was told at once/).waitFor();
  expect((await hub().getDevice('m-7'))?.twin.properties.desired).toMatchObject({ interval: 30, mode: 'eco' });
  expect(await page.getByRole('row').filter({ hasText: 'm-7' }).first().textContent()).toContain('Connected');

  expect(await seriousViolations(page)).toEqual([]);
  await screenshot(page, 'hub-devices-desktop');

  // The devices kept running meanwhile; m-7 received the patch, the others did not.
  await page.getByRole('link', { name: 'Device fleet' }).click();
  await row(page, 'm-7').locator('.fleet-desired code').filter({ hasText: '{"interval":30,"mode":"eco"}' }).waitFor();
  expect(await row(page, 'm-7').locator('.fleet-step').textContent()).toMatch(/desired properties v\d+ received/);
  expect(await row(page, 'm-8').locator('.fleet-desired code').textContent()).toBe('{"interval":5}');

  // A stale etag is a conflict, said as such with its code.
  await page.goto(`${consoleUrl()}#/devices?hub=hub-1&device=m-8`);
  await fieldIncludes(page, 'twin-desired', '"interval"');
  await hub().updateDesired('m-8', { interval: 9 });
  await page.getByLabel('Desired properties (JSON)').fill('{"interval": 10}');
  await page.getByRole('button', { name: 'Save desired properties' }).click();
  expect(await page.getByRole('alert').filter({ hasText: 'twin changed since it was read' }).textContent()).toMatch(/error 412\d{3}, HTTP 412/);
}, 60_000);

it('stops one device and then all', async () => {
  await page.getByRole('link', { name: 'Device fleet' }).click();
  await row(page, 'm-2').getByRole('button', { name: 'Stop m-2' }).click();
  await row(page, 'm-2').locator('.chip').filter({ hasText: 'stopped' }).waitFor();
  await summary(page).filter({ hasText: '24 connected' }).waitFor();
  await page.getByRole('button', { name: 'Stop all' }).click();
  await summary(page).filter({ hasText: ' 0 connected' }).waitFor();
  await page.getByRole('button', { name: 'Clear stopped' }).click();
  await summary(page).filter({ hasText: 'No devices running.' }).waitFor();
  // Chromium logs the refused save of the stale etag above as a failed resource; nothing else went wrong.
  expect(errors.filter((error) => !/status of 412/.test(error))).toEqual([]);
}, 30_000);

it('opens the fleet from a shared link with an enrollment’s parameters: a wrong key fails in words, the real one is read and works', async () => {
  const { page: colleague } = await fixture.openSignedIn({ suffix: `#/fleet?enrollment=${SOLO}&transport=amqp&rate=0&key=${Buffer.alloc(32, 1).toString('base64')}` });
  expect(await colleague.getByLabel('Individual enrollment (one device)').isChecked()).toBe(true);
  expect(await colleague.getByLabel('Enrollment', { exact: true }).inputValue()).toBe(SOLO);
  expect(await colleague.getByLabel('Transport to DPS').inputValue()).toBe('amqp');
  await colleague.getByRole('button', { name: 'Start devices' }).click();
  await row(colleague, SOLO).locator('.chip').filter({ hasText: 'failed' }).waitFor({ timeout: 30_000 });
  expect(await row(colleague, SOLO).locator('.fleet-step').textContent()).toMatch(/\(error 401\d{3}/);
  await colleague.close();

  // Without a key in the link, the enrollment's own key is read for the signed-in colleague.
  const { page: second } = await fixture.openSignedIn({ suffix: `#/fleet?enrollment=${SOLO}&transport=mqtt&rate=0` });
  await keyFilled(second);
  await second.getByRole('button', { name: 'Start devices' }).click();
  await row(second, SOLO).locator('.chip').filter({ hasText: 'connected' }).waitFor({ timeout: 30_000 });
  expect(((await service().getDeviceRegistrationState(SOLO)).responseBody as unknown as { status: string }).status).toBe('assigned');
  expect(hub().isConnected(SOLO)).toBe(true);
  // Signing out ends the devices (their keys came with the session): the hub sees the device go.
  await second.getByRole('button', { name: 'Sign out' }).click();
  await until(() => !hub().isConnected(SOLO));
  expect(hub().isConnected(SOLO)).toBe(false);
  await second.close();
}, 60_000);
