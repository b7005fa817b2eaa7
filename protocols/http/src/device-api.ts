import type { IncomingMessage, ServerResponse } from 'node:http';
import { Errors, readBody, RequestAborted, silentLogger, toDpsError, writeJson, type Logger } from '@opendps/model';
import {
  checkApiVersion,
  checkSameRegistration,
  decodeRegisterBody,
  refusalLogLevel,
  registrationRequest,
  type RegistrationOutcome,
  type RegistrationService,
} from '@opendps/registration';
import { applyCors, type CorsOrigins } from './cors';
import { METHOD_OF, isDevicePath, parseDevicePath, type DevicePath } from './paths';
import { proofOf } from './proof';
import { writeError } from './responses';
import type { HttpRoute } from './route';

/** Device request bodies are small: a registration id, TPM public keys and a custom payload (DPS allows 96 KiB). */
export const DEFAULT_MAX_BODY_BYTES = 96 * 1024;

export interface DeviceApiOptions {
  registration: RegistrationService;
  logger?: Logger;
  /** Bodies above this size are refused with 413 (default 96 KiB). */
  maxBodyBytes?: number;
  /** Page origins allowed to call it from a browser (default `*`: see cors.ts); `[]` answers no CORS. */
  corsOrigins?: CorsOrigins;
}

/**
 * The DPS device REST API (docs/device-wire.md §4): a thin translator from the wire onto the
 * registration service. It claims `/{idScope}/registrations/{registrationId}[/register |
 * /operations/{operationId}]` and leaves every decision to the service.
 */
export function createDeviceApi(options: DeviceApiOptions): HttpRoute {
  const registration = options.registration;
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const corsOrigins = options.corsOrigins ?? '*';
  const logger = (options.logger ?? silentLogger).child({ category: 'DeviceOperations', transport: 'https' });

  async function answer(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    let path: DevicePath | undefined;
    try {
      path = parseDevicePath(url.pathname);
    } catch {
      throw Errors.invalidTopic('The request path is not correctly percent-encoded.');
    }
    if (!path) throw Errors.notFound('No device API resource at this path.');
    const allowed = METHOD_OF[path.kind];
    if (req.method !== allowed) {
      req.resume();
      writeError(res, Errors.methodNotAllowed(`This resource takes ${allowed} only.`), { allow: allowed });
      return;
    }

    const raw = await readBody(req, { maxBytes: maxBodyBytes });
    const base = { idScope: path.idScope, registrationId: path.registrationId, transport: 'https' as const };
    const apiVersion = url.searchParams.get('api-version');

    if (path.kind === 'operationStatus') {
      checkApiVersion(apiVersion);
      // The Node SDK sends `{}` with a JSON content type on this GET (docs/device-wire.md, trap 7): the body means nothing.
      // A TPM device polls with its TPM SAS and no keys, so its proof here is `sas`.
      const outcome = await registration.operationStatus({ ...base, operationId: path.operationId, proof: proofOf(req, {}) });
      writeOutcome(res, outcome);
      return;
    }

    const body = decodeRegisterBody(raw, maxBodyBytes);
    const proof = proofOf(req, body);
    if (path.kind === 'registrationStatus') {
      checkSameRegistration(path.registrationId, body.registrationId);
      checkApiVersion(apiVersion);
      writeJson(res, 200, await registration.registrationStatus({ ...base, proof }));
      return;
    }

    const request = registrationRequest(
      { ...base, proof, clientAddress: req.socket.remoteAddress, apiVersion, forceRegistration: url.searchParams.get('forceRegistration') ?? undefined },
      body,
    );
    writeOutcome(res, await registration.register(request));
  }

  return {
    matches: isDevicePath,
    async handle(req, res) {
      const started = performance.now();
      let url: URL;
      try {
        url = new URL(req.url ?? '/', 'https://device-api.invalid');
      } catch {
        url = new URL('https://device-api.invalid/');
      }
      try {
        if (applyCors(req, res, corsOrigins)) return;
        await answer(req, res, url);
        logger.debug({ method: req.method, path: url.pathname, status: res.statusCode, durationMs: elapsed(started) }, 'device request');
      } catch (caught) {
        if (caught instanceof RequestAborted) {
          logger.debug({ method: req.method, path: url.pathname }, 'device request abandoned by the client');
          return;
        }
        const error = toDpsError(caught);
        if (error.status >= 500) logger.error({ method: req.method, path: url.pathname, err: String(caught) }, 'device request failed');
        else logger[refusalLogLevel(error)]({ method: req.method, path: url.pathname, errorCode: error.errorCode, reason: error.message }, 'device request refused');
        // The rest of an oversized body is not read: close rather than parse it as the next request.
        writeError(res, error, error.status === 413 ? { connection: 'close' } : {});
      }
    },
  };
}

/** 202 while assigning, with `retry-after` in whole seconds (the only delay Node reads); 200 when final. */
function writeOutcome(res: ServerResponse, outcome: RegistrationOutcome): void {
  const headers: Record<string, string> = {};
  if (outcome.status === 202) headers['retry-after'] = String(Math.max(0, Math.ceil(outcome.retryAfterSeconds ?? 2)));
  writeJson(res, outcome.status, outcome.body, headers);
}

function elapsed(started: number): number {
  return Math.round(performance.now() - started);
}
