/**
 * Headless Chromium (Debian `chromium`, driven by playwright-core) trusting only the development CA,
 * through an NSS database of its own: no flag that weakens TLS. Used by the browser-device and the
 * console suites.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

export interface Chromium {
  context: BrowserContext;
  close(): Promise<void>;
}

/** A fresh NSS database holding `caFile` as the only trust anchor Chromium adds; returns the HOME that holds it. */
function nssHome(caFile: string): string {
  const home = mkdtempSync(path.join(tmpdir(), 'opendps-chromium-home-'));
  const db = path.join(home, '.pki', 'nssdb');
  mkdirSync(db, { recursive: true });
  execFileSync('certutil', ['-N', '-d', `sql:${db}`, '--empty-password']);
  execFileSync('certutil', ['-A', '-d', `sql:${db}`, '-n', 'opendps-dev-ca', '-t', 'C,,', '-i', caFile]);
  return home;
}

export async function launchChromium(caFile: string, options: { viewport?: { width: number; height: number }; colorScheme?: 'light' | 'dark' } = {}): Promise<Chromium> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium libnss3-tools (.ci/run does)`);
  const home = nssHome(caFile);
  const profile = mkdtempSync(path.join(tmpdir(), 'opendps-chromium-profile-'));
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      // Chromium reads its NSS database from $HOME/.pki/nssdb, also headless.
      env: { ...process.env, HOME: home },
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      ...(options.viewport ? { viewport: options.viewport } : {}),
      ...(options.colorScheme ? { colorScheme: options.colorScheme } : {}),
    });
    return {
      context,
      close: async () => {
        await context.close();
        for (const dir of [home, profile]) rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    for (const dir of [home, profile]) rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}
