import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { assertDeviceId, Errors, httpServerTimeouts, readJsonBody, writeJson, toDpsError, type DpsError, type HttpTimeouts, type Logger } from '@opendps/model';
import type { BuiltInHub } from '../builtin-hub';
import { authenticateService } from './auth';
import { deleteDevice, getDevice, listDevices, putDevice, queryDevices } from './devices';
import { sendIotHubError } from './errors';
import { getTwin, patchTwin, replaceTwin } from './twins';
import type { RestRequest, RestResult } from './types';

/** Two 32 KB twin sections, tags and JSON overhead fit well within this. */
export const MAX_BODY_BYTES = 256 * 1024;

type Handler = (hub: BuiltInHub, request: RestRequest, deviceId: string) => Promise<RestResult>;

/** The routes: resource -> method -> handler (the `azure-iothub` Registry subset). */
const DEVICE_ROUTES: Record<string, Handler> = {
  GET: (hub, _request, id) => getDevice(hub, id),
  PUT: (hub, request, id) => putDevice(hub, id, request),
  DELETE: (hub, request, id) => deleteDevice(hub, id, request),
};
const TWIN_ROUTES: Record<string, Handler> = {
  GET: (hub, _request, id) => getTwin(hub, id),
  PATCH: (hub, request, id) => patchTwin(hub, id, request),
  PUT: (hub, request, id) => replaceTwin(hub, id, request),
};

/**
 * The built-in hub's service REST API: an `http.Server` with no listener of its own; the hub's TLS
 * port hands it every connection that does not start with an MQTT CONNECT.
 */
export function createHubRestServer(hub: BuiltInHub, logger: Logger, timeouts: HttpTimeouts = {}): Server {
  const server = createServer({ ...httpServerTimeouts(timeouts), maxHeaderSize: 16 * 1024 }, (req, res) => {
    handle(hub, req, res, logger).catch((error: unknown) => {
      logger.error({ err: String(error) }, 'REST request failed');
      if (!res.headersSent) sendIotHubError(res, Errors.internal());
      else res.destroy();
    });
  });
  // Node checks headersTimeout and requestTimeout only once a server emitted 'listening' (it starts
  // the periodic check then). This one never listens, so without this a client trickling header
  // lines would hold its connection forever. close() stops the check.
  server.emit('listening');
  // Malformed HTTP ends that connection only: bytes that are not HTTP at all (a bad method: other
  // protocols, garbage) are dropped at once; a broken HTTP request gets a 400 first.
  server.on('clientError', (error: Error & { code?: string }, socket) => {
    logger.debug({ err: error.message, code: error.code }, 'malformed HTTP request; closing the connection');
    if (!socket.writable || error.code === 'HPE_INVALID_METHOD' || error.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const status = error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, () => socket.destroy());
  });
  return server;
}

async function handle(hub: BuiltInHub, req: IncomingMessage, res: ServerResponse, logger: Logger): Promise<void> {
  const url = new URL(req.url ?? '/', 'https://hub.invalid');
  try {
    authenticateService(req.headers.authorization, url.pathname, { hostNames: hub.hostNames, policy: hub.accessPolicy });
    const { handler, deviceId } = route(req.method ?? 'GET', url.pathname);
    const body = await readJsonBody(req, { maxBytes: MAX_BODY_BYTES });
    const request: RestRequest = {
      headers: req.headers as RestRequest['headers'],
      query: url.searchParams,
      body,
      ifMatch: header(req, 'if-match'),
      ifNoneMatch: header(req, 'if-none-match'),
    };
    const result = await handler(hub, request, deviceId);
    logger.debug({ method: req.method, path: url.pathname, status: result.status }, 'REST request');
    writeJson(res, result.status, result.body, { 'x-ms-request-id': randomUUID(), ...result.headers });
  } catch (error) {
    const dpsError: DpsError = toDpsError(error);
    if (dpsError.status >= 500) logger.error({ method: req.method, path: url.pathname, err: String(error) }, 'REST request failed');
    else logger.info({ method: req.method, path: url.pathname, status: dpsError.status, err: dpsError.message }, 'REST request refused');
    // An unread or oversized body leaves the stream mid-request: do not reuse the connection.
    if (!req.complete) res.setHeader('connection', 'close');
    sendIotHubError(res, dpsError);
  }
}

function route(method: string, pathname: string): { handler: Handler; deviceId: string } {
  const segments = pathname.replace(/^\/+/, '').replace(/\/$/, '').split('/');
  const [resource, rawId, ...rest] = segments;
  const collection = resource?.toLowerCase();
  if (collection === 'devices' && rawId === undefined) {
    if (method === 'GET') return { handler: (hub, request) => listDevices(hub, request), deviceId: '' };
    throw Errors.methodNotAllowed();
  }
  if (collection === 'devices' && rawId === 'query' && rest.length === 0 && method === 'POST') {
    return { handler: (hub, request) => queryDevices(hub, request), deviceId: '' };
  }
  const routes = collection === 'devices' ? DEVICE_ROUTES : collection === 'twins' ? TWIN_ROUTES : undefined;
  if (!routes || rawId === undefined || rest.length > 0) throw Errors.notFound(`No resource at '${pathname.slice(0, 200)}'.`);
  const deviceId = decodeDeviceId(rawId);
  const handler = routes[method];
  if (!handler) throw Errors.methodNotAllowed(`${method} is not allowed on /${collection}/{id}.`);
  return { handler, deviceId };
}

function decodeDeviceId(raw: string): string {
  let deviceId: unknown;
  try {
    deviceId = decodeURIComponent(raw);
  } catch {
    throw Errors.invalidDeviceId('The device id in the path is not URL-encoded correctly.');
  }
  return assertDeviceId(deviceId);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}
