import type { IncomingMessage, ServerResponse } from 'node:http';
import { getTwin, patchTwin, queryDevices, type BuiltInHub, type RestRequest, type RestResult } from '@opendps/hub';
import { Errors, type LinkedHub } from '@opendps/model';
import { readBody, sendJson } from './body';

/**
 * A built-in hub's devices and twins through the admin API (docs/service-rest.md §17), for the
 * console's Hub devices page: the hub's own REST API answers on the hub's host name, which a page on
 * the console's origin cannot call. The handlers are the hub REST API's, so validation, etags and
 * the desired-property notification (to whichever node the device is connected to, through the
 * hub events) are the same.
 *
 * | method | path (under /admin/instances/{name}/hubs/{hub}) | answer |
 * |---|---|---|
 * | GET | /devices[?top=n&continuation=c] | 200 twins, `x-ms-continuation` while more remain |
 * | GET | /devices/{id}/twin | 200 twin, `etag` |
 * | PATCH | /devices/{id}/twin | `{tags?, properties: {desired}}`, optional `If-Match`: 200 twin |
 */
export async function handleHubDevices(
  req: IncomingMessage,
  res: ServerResponse,
  linked: LinkedHub,
  running: BuiltInHub | undefined,
  rest: readonly string[],
): Promise<void> {
  if (!linked.builtin) throw Errors.notFound(`The hub '${linked.name}' is an Azure IoT hub: manage its devices in Azure.`);
  if (!running) throw Errors.hubUnavailable(`The built-in hub '${linked.name}' is not running on this node.`);
  const method = req.method ?? 'GET';
  const [deviceId, leaf, ...beyond] = rest;
  const url = new URL(req.url ?? '/', 'https://admin.invalid');
  if (deviceId === undefined) {
    if (method !== 'GET') throw Errors.methodNotAllowed(`${method} is not allowed on a hub's device list; use GET.`);
    const headers: RestRequest['headers'] = {};
    const top = url.searchParams.get('top');
    const continuation = url.searchParams.get('continuation');
    if (top !== null) headers['x-ms-max-item-count'] = top;
    if (continuation !== null && continuation !== '') headers['x-ms-continuation'] = continuation;
    return send(res, await queryDevices(running, restRequest(headers, { query: 'SELECT * FROM devices' }, url)));
  }
  if (leaf?.toLowerCase() !== 'twin' || beyond.length > 0) throw Errors.notFound();
  if (method === 'GET') return send(res, await getTwin(running, deviceId));
  if (method === 'PATCH') {
    const ifMatch = req.headers['if-match'];
    return send(res, await patchTwin(running, deviceId, restRequest({}, await readBody(req), url, typeof ifMatch === 'string' ? ifMatch : undefined)));
  }
  throw Errors.methodNotAllowed(`${method} is not allowed on a device twin; use GET or PATCH.`);
}

function restRequest(headers: RestRequest['headers'], body: unknown, url: URL, ifMatch?: string): RestRequest {
  return { headers, query: url.searchParams, body, ifMatch, ifNoneMatch: undefined };
}

function send(res: ServerResponse, result: RestResult): void {
  sendJson(res, result.status, result.body, result.headers);
}
