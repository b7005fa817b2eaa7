/**
 * The console in headless Chromium against a real OpenDPS: open it at a viewport, sign in as an
 * operator would (typing the connection string), run axe-core, and keep screenshots
 * (docs/console.md "Tests"). Screenshots go to $OPENDPS_SCREENSHOTS, default test/.artifacts/console.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { launchChromium, type Chromium } from './chromium';
import { startOpenDps, type OpenDps } from './opendps';

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

export const SCREENSHOTS = process.env.OPENDPS_SCREENSHOTS ?? path.join(__dirname, '..', '.artifacts', 'console');

/** One suite's console: a real OpenDPS, Chromium trusting its dev CA, and (with `signInAs`) a page signed in. */
export interface ConsoleFixture {
  dps: OpenDps;
  chromium: Chromium;
  /** `endpoints.console` of connection.json. */
  url: string;
  /** The page signed in before the suite's tests, and its browser errors (with `signInAs` only). */
  page: Page;
  errors: string[];
  /** A new page at `url` + `suffix` (a route such as `#/fleet?…`), signed in with the service key or the admin key. */
  openSignedIn(options?: { viewport?: { width: number; height: number }; as?: 'service' | 'admin'; suffix?: string }): Promise<{ page: Page; errors: string[] }>;
}

/**
 * The console suites' one setup, registered as jest beforeAll/afterAll: start OpenDPS (hubs on the
 * device listeners), run `prepare`, launch Chromium, and sign in with the instance's service key or
 * the admin key when `signInAs` says so. The fields are set once beforeAll has run.
 */
export function useConsoleFixture(options: { colorScheme?: 'light' | 'dark'; signInAs?: 'service' | 'admin'; prepare?: (dps: OpenDps) => Promise<void> } = {}): ConsoleFixture {
  const fixture = {
    async openSignedIn({ viewport = DESKTOP, as = 'service', suffix = '' } = {}) {
      const opened = await openConsole(fixture.chromium, `${fixture.url}${suffix}`, viewport);
      await signIn(opened.page, connectionString(fixture.dps, as));
      return opened;
    },
  } as ConsoleFixture;
  beforeAll(async () => {
    const dps = await startOpenDps({ hubOnDeviceListeners: true });
    fixture.dps = dps;
    await options.prepare?.(dps);
    fixture.chromium = await launchChromium(dps.server.caFile, options.colorScheme ? { colorScheme: options.colorScheme } : {});
    const url = dps.connection.endpoints.console;
    if (!url) throw new Error('connection.json names no console');
    fixture.url = url;
    if (options.signInAs) {
      ({ page: fixture.page, errors: fixture.errors } = await openConsole(fixture.chromium, url));
      await signIn(fixture.page, connectionString(dps, options.signInAs));
    }
  }, 90_000);
  afterAll(async () => {
    await fixture.chromium?.close();
    await fixture.dps?.stop();
  });
  return fixture;
}

function connectionString(dps: OpenDps, as: 'service' | 'admin'): string {
  return as === 'admin' ? dps.server.connection.adminConnectionString : dps.connection.serviceConnectionString;
}

/** Opens the console (`endpoints.console` of connection.json) in a new page; browser errors fail loudly. */
export async function openConsole(chromium: Chromium, consoleUrl: string, viewport = DESKTOP): Promise<{ page: Page; errors: string[] }> {
  const page = await chromium.context.newPage();
  await page.setViewportSize(viewport);
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  await page.goto(consoleUrl);
  return { page, errors };
}

export async function signIn(page: Page, connectionString: string): Promise<void> {
  await page.getByLabel('Connection string').fill(connectionString);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Sections' }).waitFor();
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/**
 * axe-core's serious and critical violations on the page as it is now. The script is evaluated
 * through the DevTools protocol, which the page's Content-Security-Policy does not govern.
 */
export async function seriousViolations(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(context: unknown, options: unknown): Promise<{ violations: AxeViolation[] }> } }).axe;
    const result = await axe.run((globalThis as unknown as { document: unknown }).document, { resultTypes: ['violations'] });
    return result.violations.map((violation) => ({ id: violation.id, impact: violation.impact, help: violation.help, nodes: violation.nodes.map((node) => ({ target: node.target })) }));
  });
  return violations.filter((violation) => violation.impact === 'serious' || violation.impact === 'critical');
}
