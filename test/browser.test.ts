/**
 * Browser devices in headless Chromium (Debian `chromium`, driven by playwright-core), trusting
 * only the development CA through an NSS database of their own (docs/device-wire.md §5,
 * "Browsers"). A page served from a local origin registers symmetric-key devices over MQTT/WS,
 * AMQP/WS and the REST API (fetch, CORS preflight, 202 and polling), then reaches its hub over
 * MQTT/WS: all on the browser host name, whose TLS asks for no client certificate. No flags that
 * weaken TLS, no page-side tricks. One browser launch for the file.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { generateSymmetricKey } from '@opendps/model';
import type { BrowserContext, Page } from 'playwright-core';
import { launchChromium, type Chromium } from './support/chromium';
import { serviceClient, startOpenDps, type OpenDps } from './support/opendps';

const FILES: Record<string, string> = {
  '/mqtt.min.js': path.join(__dirname, 'node_modules/mqtt/dist/mqtt.min.js'),
  '/rhea-umd.js': path.join(__dirname, '../protocols/amqp/node_modules/rhea/dist/rhea-umd.js'),
  '/device.js': path.join(__dirname, 'support/browser-device.js'),
};
const PAGE = '<!doctype html><meta charset="utf-8"><script src="/mqtt.min.js"></script><script src="/rhea-umd.js"></script><script src="/device.js"></script>';

interface Answer {
  status: number | string;
  retryAfter: string | null;
  errorCode?: string | null;
}
interface Registration {
  answers: Answer[];
  body: { status: string; operationId: string; registrationState?: { assignedHub?: string; deviceId?: string; status?: string } };
}

let dps: OpenDps;
let pages: Server;
let origin = '';
let otherOrigin = '';
let chromium: Chromium;
let browser: BrowserContext;
let page: Page;
const key = generateSymmetricKey();
const consoleLines: string[] = [];

beforeAll(async () => {
  // The page's own origin comes first: the server allows exactly it for CORS and WebSockets.
  pages = createHttpServer((req, res) => {
    const file = FILES[req.url ?? ''];
    if (file) res.writeHead(200, { 'content-type': 'text/javascript' }).end(readFileSync(file));
    else res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
  });
  await new Promise<void>((resolve) => pages.listen(0, '127.0.0.1', resolve));
  const pagePort = (pages.address() as AddressInfo).port;
  origin = `http://localhost:${pagePort}`;
  otherOrigin = `http://127.0.0.1:${pagePort}`;
  // Every registration answers 202 at first, so each page also polls.
  dps = await startOpenDps({ hubOnDeviceListeners: true, server: { corsOrigins: [origin], webSocketOrigins: [origin], timeouts: { answerWithinMs: 0 } } });
  const service = serviceClient(dps.connection.serviceConnectionString, dps.connection.endpoints.https, dps.ca);
  for (const registrationId of ['web-mqtt', 'web-amqp', 'web-rest']) {
    await service.createOrUpdateIndividualEnrollment({
      registrationId,
      attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: generateSymmetricKey() } },
      initialTwin: { properties: { desired: { interval: 42 } } },
    } as never);
  }
  chromium = await launchChromium(dps.server.caFile);
  browser = chromium.context;
  page = await openPage(origin);
}, 90_000);

afterAll(async () => {
  await chromium?.close();
  await dps?.stop();
  await new Promise((resolve) => pages?.close(resolve));
});

async function openPage(at: string): Promise<Page> {
  const opened = await browser.newPage();
  opened.on('console', (message) => consoleLines.push(message.text()));
  await opened.goto(`${at}/`);
  return opened;
}

/** Calls one of the functions browser-device.js puts on the page's global object. */
function inPage<T>(on: Page, name: string, args: unknown): Promise<T> {
  return on.evaluate(
    ([fn, given]) => (globalThis as unknown as Record<string, (value: unknown) => Promise<unknown>>)[fn as string]?.(given),
    [name, args] as const,
  ) as Promise<T>;
}

const browserEndpoints = () => {
  const endpoints = dps.connection.endpoints;
  if (!endpoints.browser) throw new Error('connection.json names no browser host');
  return endpoints.browser;
};

function expectRegisteredAfterPolling(result: Registration, registrationId: string): void {
  expect(result.answers.length).toBeGreaterThanOrEqual(2);
  expect(result.answers[0]?.retryAfter).toMatch(/^\d+$/);
  expect(result.body.status).toBe('assigned');
  expect(result.body.registrationState).toMatchObject({ deviceId: registrationId, assignedHub: dps.connection.endpoints.hubs[0] });
}

it('lists the browser host and the WebSocket URLs in connection.json', () => {
  const https = dps.connection.endpoints.https;
  expect(dps.connection.endpoints.websocket).toBe(`wss://${https}/$iothub/websocket`);
  expect(browserEndpoints()).toEqual({ https: `browser.${https}`, websocket: `wss://browser.${https}/$iothub/websocket` });
});

it('registers over MQTT/WS, then reaches the assigned hub over MQTT/WS: desired properties and telemetry', async () => {
  const { websocket } = browserEndpoints();
  const registered = await inPage<Registration>(page, 'registerOverMqtt', {
    url: websocket,
    idScope: dps.connection.idScope,
    registrationId: 'web-mqtt',
    key,
  });
  expect(registered.answers[0]?.status).toBe(202);
  expectRegisteredAfterPolling(registered, 'web-mqtt');

  const hubHost = registered.body.registrationState?.assignedHub ?? '';
  const session = await inPage<{ twinStatus: number; desired: Record<string, unknown> }>(page, 'hubSession', {
    url: websocket,
    hubHost,
    deviceId: 'web-mqtt',
    key,
    telemetry: { temperature: 21 },
  });
  expect(session.twinStatus).toBe(200);
  expect(session.desired).toMatchObject({ interval: 42 });
  const hub = dps.server.hubs.get('hub-1');
  expect(hub?.receivedMessages('web-mqtt').map((message) => JSON.parse(message.payload.toString()))).toEqual([{ temperature: 21 }]);
});

it('registers over AMQP/WS with the rhea browser bundle', async () => {
  const registered = await inPage<Registration>(page, 'registerOverAmqp', {
    url: browserEndpoints().websocket,
    host: 'browser.localhost',
    idScope: dps.connection.idScope,
    registrationId: 'web-amqp',
    key,
  });
  expect(registered.answers[0]?.status).toBe('assigning');
  expectRegisteredAfterPolling(registered, 'web-amqp');
});

it('registers over the REST API with fetch: preflight, 202 with a readable retry-after, polling to 200', async () => {
  const call = (registrationId: string, withKey: string) =>
    inPage<Registration>(page, 'registerOverRest', {
      base: `https://${browserEndpoints().https}`,
      idScope: dps.connection.idScope,
      registrationId,
      key: withKey,
    });
  const registered = await call('web-rest', key);
  expect(registered.answers[0]?.status).toBe(202);
  expect(registered.answers.at(-1)?.status).toBe(200);
  expectRegisteredAfterPolling(registered, 'web-rest');
  // A refusal is readable too: its x-ms-error-code is exposed to the page.
  const refused = await call('web-rest', generateSymmetricKey());
  expect(refused.answers).toEqual([{ status: 401, retryAfter: null, errorCode: '401002' }]);
});

it('keeps other page origins out: no CORS answer for their fetch, 403 for their WebSocket upgrade', async () => {
  const other = await openPage(otherOrigin);
  try {
    const fetched = await other.evaluate(async (base) => {
      try {
        await fetch(`${base}/0ne00000000/registrations/x/register?api-version=2021-06-01`, { method: 'PUT', headers: { authorization: 'x', 'content-type': 'application/json' }, body: '{}' });
        return 'answered';
      } catch (error) {
        return (error as Error).name;
      }
    }, `https://${browserEndpoints().https}`);
    expect(fetched).toBe('TypeError');
    const url = browserEndpoints().websocket;
    expect(await inPage<string>(other, 'tryWebSocket', url)).toBe('error');
    expect(consoleLines.some((line) => line.includes(url) && line.includes('Unexpected response code: 403'))).toBe(true);
  } finally {
    await other.close();
  }
});

it('is asked for a client certificate on the main host name, where Chromium cancels the upgrade (why the browser host exists)', async () => {
  const url = dps.connection.endpoints.websocket ?? '';
  expect(await inPage<string>(page, 'tryWebSocket', url)).toBe('error');
  expect(consoleLines.some((line) => line.includes(url) && line.includes('handshake was canceled'))).toBe(true);
  expect(await inPage<string>(page, 'tryWebSocket', browserEndpoints().websocket)).toBe('open');
});
