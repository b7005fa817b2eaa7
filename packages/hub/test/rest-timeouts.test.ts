import { slowHttpClient } from '../../../test/support/slow-http-client';
import { addSasDevice, startHub, type HubFixture } from './helpers';
import { connectDevice, hubRequest, serviceToken } from './rest-helpers';

/**
 * The hub's REST API is an http.Server fed connections by the hub's first-byte dispatcher, never
 * listening itself: its header and request deadlines must hold all the same. Deadlines of
 * 200/400 ms, checked every 20 ms.
 */
let fixture: HubFixture;

beforeAll(async () => {
  fixture = await startHub({ restTimeouts: { headersTimeoutMs: 200, requestTimeoutMs: 400, checkIntervalMs: 20 } });
});
afterAll(() => fixture.close());

const slow = (opening: string, trickle?: (n: number) => string) =>
  slowHttpClient({ port: fixture.hub.port, ca: fixture.root.certificatePem, opening, ...(trickle ? { trickle } : {}) });

describe('built-in hub REST API deadlines', () => {
  it('closes a client trickling header lines with a 408; REST requests and device MQTT are served meanwhile', async () => {
    const key = await addSasDevice(fixture.hub, 'dev-1');
    const [trickling, served] = await Promise.all([slow('GET /devices/dev-1?api-version=2021-04-12 HTTP/1.1\r\nHost: localhost\r\n'), hubRequest(fixture, 'GET', '/devices/dev-1?api-version=2021-04-12')]);
    expect(trickling.closedByServer).toBe(true);
    expect(trickling.answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(trickling.sent).toBeGreaterThan(0);
    expect(served.status).toBe(200);
    expect(served.json).toMatchObject({ deviceId: 'dev-1' });
    // A device connection on the same port lives past both deadlines.
    const device = await connectDevice(fixture, 'dev-1', key.primaryKey);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(device.connected).toBe(true);
    device.end(true);
  });

  it('closes a client trickling its body once the request deadline passed', async () => {
    const headers = `Host: localhost\r\nAuthorization: ${serviceToken(fixture.hub)}\r\nContent-Length: 1000\r\n\r\n`;
    const trickling = await slow(`PUT /devices/dev-2?api-version=2021-04-12 HTTP/1.1\r\n${headers}`, () => ' ');
    expect(trickling.closedByServer).toBe(true);
    expect(trickling.answer).toMatch(/^HTTP\/1\.1 408 /);
  });
});
