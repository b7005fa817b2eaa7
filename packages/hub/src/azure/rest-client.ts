import { Agent, request } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { randomUUID } from 'node:crypto';
import { createSasToken } from '@opendps/attestation';
import { Errors } from '@opendps/model';
import type { HubConnectionString } from './connection-string';

/** The IoT Hub service api-version azure-iothub 1.16 sends. */
export const IOT_HUB_API_VERSION = '2021-04-12';
const DEFAULT_TIMEOUT_MS = 10_000;
const TOKEN_LIFETIME_SECONDS = 3600;
/** An error body is read for its message only; past this it is not worth keeping. */
const MAX_RESPONSE_BYTES = 1024 * 1024;

export interface IotHubRestClientOptions {
  /** Extra trusted CA certificates (PEM), e.g. a development CA of a built-in hub. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Overrides the connection string's port (default: its port, else 443). */
  port?: number;
  /** Per request, from sending to the end of the response (default 10 s). */
  timeoutMs?: number;
}

export interface IotHubResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** Parsed JSON, or undefined when the body is empty or not JSON. */
  body: unknown;
  /** IoT Hub's `ErrorCode:` from an error body, when there is one. */
  errorCode?: string;
  /** A short message for logs and errors. */
  message: string;
}

/**
 * HTTPS to the IoT Hub service REST API: a fresh service SAS per request (`sr` = the host name,
 * `skn` = the policy, one hour), one keep-alive agent, a timeout per request. Transport failures
 * and timeouts become `Errors.hubUnavailable`; answers of any status are returned to the caller.
 */
export class IotHubRestClient {
  private readonly agent: Agent;
  private readonly port: number;
  private readonly timeoutMs: number;

  constructor(
    private readonly target: HubConnectionString,
    options: IotHubRestClientOptions = {},
  ) {
    this.port = options.port ?? target.port ?? 443;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.agent = new Agent({ keepAlive: true, maxSockets: 16, ...(options.ca ? { ca: options.ca } : {}) });
  }

  async send(
    method: 'GET' | 'PUT' | 'PATCH' | 'DELETE',
    path: string,
    options: { body?: unknown; ifMatch?: string } = {},
  ): Promise<IotHubResponse> {
    const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body), 'utf8');
    const headers: Record<string, string> = {
      authorization: this.token(),
      accept: 'application/json',
      'request-id': randomUUID(),
      'user-agent': 'opendps-hub-connector',
      ...(payload ? { 'content-type': 'application/json; charset=utf-8', 'content-length': String(payload.length) } : {}),
      ...(options.ifMatch ? { 'if-match': options.ifMatch } : {}),
    };
    const separator = path.includes('?') ? '&' : '?';
    return new Promise<IotHubResponse>((resolve, reject) => {
      const req = request(
        {
          host: this.target.host,
          port: this.port,
          servername: this.target.host,
          method,
          path: `${path}${separator}api-version=${IOT_HUB_API_VERSION}`,
          headers,
          agent: this.agent,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size <= MAX_RESPONSE_BYTES) chunks.push(chunk);
          });
          res.on('end', () => {
            clearTimeout(timer);
            resolve(toResponse(res.statusCode ?? 0, res.headers, Buffer.concat(chunks).toString('utf8')));
          });
          res.on('error', (error) => fail(error));
        },
      );
      const fail = (error: Error): void => {
        clearTimeout(timer);
        req.destroy();
        reject(
          Errors.hubUnavailable(`The IoT hub '${this.target.hostName}' could not be reached (${method} ${path.split('?')[0]}: ${error.message}).`),
        );
      };
      const timer = setTimeout(() => fail(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
      req.on('error', fail);
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }

  private token(): string {
    return createSasToken({
      resource: this.target.hostName,
      key: this.target.key,
      keyName: this.target.keyName,
      expiry: Math.floor(Date.now() / 1000) + TOKEN_LIFETIME_SECONDS,
      encodeResource: true,
    });
  }
}

function toResponse(status: number, headers: IncomingHttpHeaders, text: string): IotHubResponse {
  let body: unknown;
  if (text.trim() !== '') {
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
  }
  // IoT Hub: {"Message":"ErrorCode:DeviceNotFound;…","ExceptionMessage":"…"}.
  const raw = typeof body === 'object' && body !== null ? (body as { Message?: unknown }).Message : undefined;
  const match = typeof raw === 'string' ? /^ErrorCode:([A-Za-z]+);(.*)$/s.exec(raw) : null;
  const headerCode = headers['iothub-errorcode'];
  const errorCode = match?.[1] ?? (typeof headerCode === 'string' ? headerCode : undefined);
  const message = (match?.[2] ?? (typeof raw === 'string' ? raw : text)).slice(0, 300);
  return { status, headers, body, ...(errorCode ? { errorCode } : {}), message };
}
