/**
 * The web console as served and signed into (docs/console.md): its headers (CSP, gzip, caching),
 * its refusals, and sign-in with each kind of connection string in headless Chromium trusting only
 * the dev CA. The pages have suites of their own (test/console-*.test.ts).
 */
import { request } from 'node:https';
import { DESKTOP, openConsole, PHONE, screenshot, seriousViolations, signIn, useConsoleFixture } from './support/console';

const fixture = useConsoleFixture();

const consoleUrl = () => fixture.url;

function get(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  const url = new URL(path, consoleUrl());
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: url.port, servername: url.hostname, path: url.pathname, method, headers: { host: url.host, ...headers }, ca: fixture.dps.ca }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

it('serves index.html under /console/ with a Content-Security-Policy that allows this origin only', async () => {
  expect(consoleUrl()).toBe(`https://browser.${fixture.dps.connection.endpoints.https}/console/`);
  const page = await get('/console/');
  expect(page.status).toBe(200);
  expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
  expect(page.headers['content-security-policy']).toContain("script-src 'self'");
  expect(page.headers['content-security-policy']).toContain("connect-src 'self'");
  expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'");
  expect(page.headers['cache-control']).toBe('no-cache');
  expect(page.body.toString()).toContain('<div id="app">');
  // Any page of the console is the same document (hash routes), and /console redirects to /console/.
  expect((await get('/console/enrollments')).status).toBe(200);
  expect((await get('/console')).headers.location).toBe('/console/');
});

it('sends hashed assets gzipped when asked, cached for good', async () => {
  const html = (await get('/console/')).body.toString();
  const script = /src="(assets\/[^"]+\.js)"/.exec(html)?.[1];
  expect(script).toBeDefined();
  const zipped = await get(`/console/${script}`, { 'accept-encoding': 'gzip, br' });
  expect(zipped.status).toBe(200);
  expect(zipped.headers['content-encoding']).toBe('gzip');
  expect(zipped.headers['cache-control']).toContain('immutable');
  const plain = await get(`/console/${script}`);
  expect(plain.headers['content-encoding']).toBeUndefined();
  expect(plain.body.length).toBeGreaterThan(zipped.body.length);
});

it('refuses writes, unknown assets and paths that climb out of the bundle', async () => {
  expect((await get('/console/', {}, 'POST')).status).toBe(405);
  expect((await get('/console/assets/nothing.js')).status).toBe(404);
  expect((await get('/console/assets/%2e%2e/%2e%2e/package.json')).status).toBe(404);
  expect((await get('/console/assets/..%2f..%2fpackage.json')).status).toBe(404);
});

it('signs in with the service connection string, shows the instance, and signs out', async () => {
  const { page, errors } = await fixture.openSignedIn();
  expect(await page.getByText(fixture.dps.connection.idScope).isVisible()).toBe(true);
  expect(await page.getByRole('link', { name: 'Instances' }).count()).toBe(0);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('Connection string').waitFor();
  expect(errors).toEqual([]);
  await page.close();
});

it('signs in with the admin connection string, which also manages instances', async () => {
  const { page } = await fixture.openSignedIn({ as: 'admin' });
  expect(await page.getByRole('link', { name: 'Instances' }).count()).toBe(1);
  await page.close();
});

it('says in words, with the error code, why a sign-in failed', async () => {
  const { page } = await openConsole(fixture.chromium, consoleUrl());
  await page.getByLabel('Connection string').fill('HostName=x;SharedAccessKey=abc');
  await page.getByRole('button', { name: 'Sign in' }).click();
  expect(await page.getByRole('alert').textContent()).toContain('needs HostName, SharedAccessKeyName and SharedAccessKey');
  const forged = fixture.dps.connection.serviceConnectionString.replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${Buffer.alloc(32, 7).toString('base64')}`);
  await page.getByLabel('Connection string').fill(forged);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'HTTP 401' }).waitFor();
  expect(await page.getByRole('alert').textContent()).toMatch(/error 401\d{3}/);
  await page.close();
});

it('has no serious accessibility violations on the sign-in page and the signed-in shell, at desktop and phone width', async () => {
  for (const viewport of [DESKTOP, PHONE]) {
    const { page } = await openConsole(fixture.chromium, consoleUrl(), viewport);
    expect(await seriousViolations(page)).toEqual([]);
    await signIn(page, fixture.dps.connection.serviceConnectionString);
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, `shell-${viewport === DESKTOP ? 'desktop' : 'phone'}`);
    await page.close();
  }
});
