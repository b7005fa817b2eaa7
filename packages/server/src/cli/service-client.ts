import { request } from 'node:https';
import { isIP } from 'node:net';
import { createSasToken } from '@opendps/attestation';
import { CliFailure } from './errors';
import type { ServiceTarget } from './target';

/** The service API version the CLI speaks (what the Node service SDK sends). */
export const API_VERSION = '2021-10-01';
const TOKEN_LIFETIME_SECONDS = 3600;

export interface ServiceResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

/** A DPS error answer: the CLI prints the message and errorCode. */
export class ServiceApiError extends CliFailure {
  constructor(
    readonly status: number,
    readonly errorCode: number | undefined,
    message: string,
  ) {
    super(`${message} (errorCode ${errorCode ?? 'none'}, HTTP ${status})`);
  }
}

/**
 * Calls the DPS service REST API with a SAS token signed by the target's policy key, as the Azure
 * service SDK does (`sr` = the raw HostName, docs/service-rest.md §8).
 */
export async function callServiceApi(
  target: ServiceTarget,
  method: string,
  path: string,
  options: { body?: unknown; headers?: Record<string, string> } = {},
): Promise<ServiceResponse> {
  const token = createSasToken({
    resource: target.hostName,
    key: target.key,
    keyName: target.keyName,
    expiry: Math.floor(Date.now() / 1000) + TOKEN_LIFETIME_SECONDS,
  });
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  const response = await new Promise<{ status: number; headers: ServiceResponse['headers']; text: string }>((resolve, reject) => {
    const req = request(
      {
        host: target.host,
        port: target.port,
        method,
        path: `${path}?api-version=${API_VERSION}`,
        ...(target.ca ? { ca: target.ca } : {}),
        ...(isIP(target.host) ? {} : { servername: target.host }),
        headers: {
          authorization: token,
          accept: 'application/json',
          'user-agent': 'opendps-cli',
          ...(payload !== undefined ? { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(payload) } : {}),
          ...options.headers,
        },
        timeout: 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', reject);
    req.end(payload);
  }).catch((error: NodeJS.ErrnoException) => {
    throw new CliFailure(`cannot reach https://${target.host}:${target.port}: ${error.code ?? error.message}`);
  });

  const body = parseBody(response.text);
  if (response.status >= 400) {
    const details = (body ?? {}) as { errorCode?: unknown; message?: unknown };
    throw new ServiceApiError(
      response.status,
      typeof details.errorCode === 'number' ? details.errorCode : undefined,
      typeof details.message === 'string' ? details.message : response.text || `HTTP ${response.status}`,
    );
  }
  return { status: response.status, headers: response.headers, body };
}

function parseBody(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
