import { connect as tlsConnect } from 'node:tls';
import { addSasDevice, startHub, type HubFixture } from './helpers';
import { connectDevice, hubRequest, serviceToken, type RawResponse } from './rest-helpers';

/** The hub's REST API over raw HTTPS: status codes, IoT Hub error bodies, bad input, the shared port. */
describe('built-in hub REST API (raw HTTPS)', () => {
  let fixture: HubFixture;

  beforeAll(async () => {
    fixture = await startHub();
  });
  afterAll(async () => {
    await fixture.close();
  });

  function expectIotHubError(response: RawResponse, status: number, code: string): void {
    expect(response.status).toBe(status);
    expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(response.headers['iothub-errorcode']).toBe(code);
    expect(response.json).toMatchObject({ Message: expect.stringMatching(new RegExp(`^ErrorCode:${code};.+`)) });
  }

  const api = '?api-version=2021-04-12';

  it('refuses requests without a valid service token', async () => {
    expectIotHubError(await hubRequest(fixture, 'GET', `/devices/x${api}`, { auth: null }), 401, 'IotHubUnauthorizedAccess');
    expectIotHubError(await hubRequest(fixture, 'GET', `/devices/x${api}`, { auth: 'Bearer abc' }), 401, 'IotHubUnauthorizedAccess');
    const otherHost = serviceToken(fixture.hub, { resource: 'otherhub.example.net' });
    expectIotHubError(await hubRequest(fixture, 'GET', `/devices/x${api}`, { auth: otherHost }), 401, 'IotHubUnauthorizedAccess');
    // `sr` is compared decoded and case-insensitively, and may name a path under the host.
    const encoded = serviceToken(fixture.hub, { resource: encodeURIComponent(fixture.hub.hostName.toUpperCase()) });
    expectIotHubError(await hubRequest(fixture, 'GET', `/devices/x${api}`, { auth: encoded }), 404, 'DeviceNotFound');
    const scoped = serviceToken(fixture.hub, { resource: `${fixture.hub.hostName}/devices/x` });
    expectIotHubError(await hubRequest(fixture, 'GET', `/devices/x${api}`, { auth: scoped }), 404, 'DeviceNotFound');
    expectIotHubError(await hubRequest(fixture, 'GET', `/devices/y${api}`, { auth: scoped }), 401, 'IotHubUnauthorizedAccess');
  });

  it('answers bad input with coded 4xx JSON errors', async () => {
    const put = (path: string, body: string, headers?: Record<string, string>): Promise<RawResponse> =>
      hubRequest(fixture, 'PUT', `${path}${api}`, { body, ...(headers ? { headers } : {}) });
    expectIotHubError(await put('/devices/bad-json', '{"deviceId":'), 400, 'ArgumentInvalid');
    expectIotHubError(await put('/devices/bad-json', '[1,2]'), 400, 'ArgumentInvalid');
    expectIotHubError(await put('/devices/bad-json', '{"deviceId":"other"}'), 400, 'ArgumentInvalid');
    expectIotHubError(await put('/devices/bad-json', '{"authentication":{"type":"certificateAuthority"}}'), 400, 'ArgumentInvalid');
    expectIotHubError(await put('/devices/bad-json', '{"authentication":{"type":"sas","symmetricKey":{"primaryKey":"short"}}}'), 400, 'ArgumentInvalid');
    expectIotHubError(await put('/devices/bad-json', '{"status":"sleeping"}'), 400, 'ArgumentInvalid');
    expectIotHubError(await put('/devices/bad-json', '{}', { 'content-type': 'text/plain' }), 415, 'UnsupportedMediaType');
    expectIotHubError(await put('/devices/%E0%A4%A', '{}'), 400, 'ArgumentInvalid');
    expectIotHubError(await put('/devices/has%20space', '{}'), 400, 'ArgumentInvalid');
    expectIotHubError(await put('/devices/too-big', JSON.stringify({ pad: 'x'.repeat(300 * 1024) })), 413, 'MessageTooLarge');
    expectIotHubError(await hubRequest(fixture, 'GET', `/statistics/devices${api}`), 404, 'NotFound');
    expectIotHubError(await hubRequest(fixture, 'POST', `/devices/bad-json${api}`), 405, 'MethodNotAllowed');
    expectIotHubError(await hubRequest(fixture, 'POST', `/devices/query${api}`, { body: '{"query":"SELECT * FROM jobs"}' }), 400, 'ArgumentInvalid');
    expect(await fixture.hub.getDevice('bad-json')).toBeUndefined();
  });

  it('applies If-Match and If-None-Match to devices as IoT Hub does', async () => {
    const create = await hubRequest(fixture, 'PUT', `/devices/etag-dev${api}`, { body: '{"deviceId":"etag-dev"}' });
    expect(create.status).toBe(200);
    const etag = (create.json as { etag: string }).etag;
    expect(create.headers.etag).toBe(`"${etag}"`);
    const disable = JSON.stringify({ deviceId: 'etag-dev', status: 'disabled' });
    expectIotHubError(await hubRequest(fixture, 'PUT', `/devices/etag-dev${api}`, { body: disable, headers: { 'if-match': '"stale"' } }), 412, 'PreconditionFailed');
    expectIotHubError(await hubRequest(fixture, 'PUT', `/devices/etag-dev${api}`, { body: disable, headers: { 'if-none-match': '*' } }), 412, 'PreconditionFailed');
    const updated = await hubRequest(fixture, 'PUT', `/devices/etag-dev${api}`, { body: disable, headers: { 'if-match': `"${etag}"` } });
    expect(updated.status).toBe(200);
    expect(updated.json).toMatchObject({ status: 'disabled' });
    expectIotHubError(await hubRequest(fixture, 'DELETE', `/devices/etag-dev${api}`, { headers: { 'if-match': `"${etag}"` } }), 412, 'PreconditionFailed');
    const deleted = await hubRequest(fixture, 'DELETE', `/devices/etag-dev${api}`, { headers: { 'if-match': `"${(updated.json as { etag: string }).etag}"` } });
    expect(deleted.status).toBe(204);
    expect(await fixture.hub.getDevice('etag-dev')).toBeUndefined();
  });

  it('replaces the twin with PUT (reported ignored), refuses reported in PATCH, and leaves reported to the device', async () => {
    await addSasDevice(fixture.hub, 'twin-put', { tags: { a: 1 }, desired: { old: true } });
    await fixture.hub.registry.patchReported('twin-put', { firmware: '1.0' });
    const read = await hubRequest(fixture, 'GET', `/twins/twin-put${api}`);
    const twin = read.json as { etag: string; properties: { reported: Record<string, unknown> } };
    expect(twin.properties.reported).toMatchObject({ firmware: '1.0', $version: 2 });
    const replacement = JSON.stringify({ ...twin, tags: { b: 2 }, properties: { desired: { fresh: 1 }, reported: { firmware: 'forged' } } });
    const replaced = await hubRequest(fixture, 'PUT', `/twins/twin-put${api}`, { body: replacement, headers: { 'if-match': `"${twin.etag}"` } });
    expect(replaced.status).toBe(200);
    expect(replaced.json).toMatchObject({ tags: { b: 2 }, properties: { desired: { fresh: 1 }, reported: { firmware: '1.0' } } });
    expect((replaced.json as { properties: { desired: Record<string, unknown> } }).properties.desired).not.toHaveProperty('old');
    expectIotHubError(await hubRequest(fixture, 'PUT', `/twins/twin-put${api}`, { body: replacement, headers: { 'if-match': `"${twin.etag}"` } }), 412, 'PreconditionFailed');
    const forged = JSON.stringify({ properties: { reported: { firmware: 'forged' } } });
    expectIotHubError(await hubRequest(fixture, 'PATCH', `/twins/twin-put${api}`, { body: forged, headers: { 'if-match': '*' } }), 400, 'ArgumentInvalid');
    const badKey = JSON.stringify({ properties: { desired: { 'a.b': 1 } } });
    expectIotHubError(await hubRequest(fixture, 'PATCH', `/twins/twin-put${api}`, { body: badKey, headers: { 'if-match': '*' } }), 400, 'ArgumentInvalid');
    expectIotHubError(await hubRequest(fixture, 'PATCH', `/twins/nobody${api}`, { body: '{"tags":{}}', headers: { 'if-match': '*' } }), 404, 'DeviceNotFound');
    expect((await fixture.hub.getDevice('twin-put'))?.twin.properties.reported).toEqual({ firmware: '1.0', $version: 2 });
  });

  it('closes only the connection that sends garbage or malformed HTTP; MQTT and REST keep working', async () => {
    const { primaryKey } = await addSasDevice(fixture.hub, 'port-survivor');
    const device = await connectDevice(fixture, 'port-survivor', primaryKey);
    const closedBy = (bytes: Buffer, readReply: boolean): Promise<string> =>
      new Promise((resolve, reject) => {
        const socket = tlsConnect({ host: 'localhost', port: fixture.hub.port, ca: fixture.root.certificatePem }, () => socket.write(bytes));
        let reply = '';
        if (readReply) socket.on('data', (chunk: Buffer) => (reply += chunk.toString('latin1')));
        socket.on('error', () => undefined);
        socket.on('close', () => resolve(reply));
        socket.setTimeout(5000, () => reject(new Error('the hub kept a bad connection open')));
      });
    await closedBy(Buffer.from([0xff, 0x00, 0x13, 0x37]), false);
    await closedBy(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x7f]), false);
    expect(await closedBy(Buffer.from('GET /devices HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n'), true)).toMatch(/^HTTP\/1\.1 400 /);
    expect(await closedBy(Buffer.from(`GET /devices HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`), true)).toMatch(/^HTTP\/1\.1 4\d\d /);

    await device.publishAsync('devices/port-survivor/messages/events/', 'still here', { qos: 1 });
    expect(fixture.hub.telemetryCount('port-survivor')).toBe(1);
    expect((await hubRequest(fixture, 'GET', `/devices/port-survivor${api}`)).status).toBe(200);
    await device.endAsync(true);
  });

  it('serves several REST requests on one keep-alive connection', async () => {
    const { Agent } = await import('node:https');
    const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: fixture.root.certificatePem });
    const { request } = await import('node:https');
    const sockets = new Set<unknown>();
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((resolve, reject) => {
        const req = request(
          { host: 'localhost', port: fixture.hub.port, path: `/devices${api}`, agent, headers: { authorization: serviceToken(fixture.hub) } },
          (res) => {
            sockets.add(res.socket);
            expect(res.statusCode).toBe(200);
            res.resume();
            res.on('end', () => resolve());
          },
        );
        req.on('error', reject);
        req.end();
      });
    }
    expect(sockets.size).toBe(1);
    agent.destroy();
  });
});
