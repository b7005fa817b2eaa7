import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { rootCertificates } from 'node:tls';
import { DpsError, Errors } from '@opendps/model';
import { ipv4ToNumber } from './latency';
import type { WebhookAllocationRequest, WebhookClient } from './webhook';

export interface HttpsWebhookClientOptions {
  /** Per attempt, connect to the end of the answer. Default 10 000 ms (ARCHITECTURE.md). */
  timeoutMs?: number;
  /** Attempts in all, including the first. Default 3. */
  attempts?: number;
  /** Delay before retry number `retry` (1, 2, …). Default 500 ms × 2^(retry-1). */
  backoffMs?: (retry: number) => number;
  /** Extra trusted CA certificates (PEM), added to the system CAs. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** A PEM file of extra trusted CAs (the config's `webhookCaFile`), read once at construction. */
  caFile?: string;
  /** Answers larger than this are refused (502202). Default 256 KiB. */
  maxResponseBytes?: number;
}

const DEFAULTS = { timeoutMs: 10_000, attempts: 3, maxResponseBytes: 256 * 1024 };

/** One attempt's failure: the coded error a device would see, and whether trying again may help. */
interface AttemptFailure {
  error: DpsError;
  retryable: boolean;
}

/** TLS verification failures: retrying cannot help. */
const TLS_FAILURES = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ERR_TLS|ERR_SSL|HOSTNAME/;

/**
 * Calls custom allocation webhooks over node:https (or node:http to loopback only). Network errors,
 * timeouts and 5xx are retried with back-off; 4xx, redirects and untrusted certificates are not.
 * Error messages name the webhook by origin and path only: the query carries the function key.
 */
export class HttpsWebhookClient implements WebhookClient {
  private readonly timeoutMs: number;
  private readonly attempts: number;
  private readonly backoffMs: (retry: number) => number;
  private readonly maxResponseBytes: number;
  private readonly httpsAgent: https.Agent;
  private readonly httpAgent = new http.Agent({ keepAlive: true });

  constructor(options: HttpsWebhookClientOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? DEFAULTS.timeoutMs;
    this.attempts = Math.max(1, Math.floor(options.attempts ?? DEFAULTS.attempts));
    this.backoffMs = options.backoffMs ?? ((retry) => 500 * 2 ** (retry - 1));
    this.maxResponseBytes = options.maxResponseBytes ?? DEFAULTS.maxResponseBytes;
    const extra = [...toArray(options.ca), ...(options.caFile ? [readCaFile(options.caFile)] : [])];
    this.httpsAgent = new https.Agent({ keepAlive: true, ...(extra.length ? { ca: [...rootCertificates, ...extra] } : {}) });
  }

  async call(webhookUrl: string, request: WebhookAllocationRequest): Promise<unknown> {
    const url = checkWebhookUrl(webhookUrl);
    const body = Buffer.from(JSON.stringify(request), 'utf8');
    let failure: AttemptFailure | undefined;
    let attempt = 0;
    while (attempt < this.attempts) {
      if (attempt > 0) await delay(this.backoffMs(attempt));
      attempt++;
      try {
        return await this.attempt(url, body);
      } catch (caught) {
        failure = caught as AttemptFailure;
        if (!failure.retryable) break;
      }
    }
    const { error } = failure as AttemptFailure;
    throw new DpsError(error.status, error.errorCode, error.message, { ...error.info, attempts: String(attempt) });
  }

  /** Closes idle keep-alive connections. */
  close(): void {
    this.httpsAgent.destroy();
    this.httpAgent.destroy();
  }

  private attempt(url: URL, body: Buffer): Promise<unknown> {
    const where = `${url.origin}${url.pathname}`;
    const secure = url.protocol === 'https:';
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (error: DpsError, retryable: boolean) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        request.destroy();
        reject({ error, retryable } satisfies AttemptFailure);
      };
      const request = (secure ? https : http).request(url, {
        method: 'POST',
        agent: secure ? this.httpsAgent : this.httpAgent,
        headers: {
          'content-type': 'application/json; charset=utf-8',
          'content-length': body.length,
          accept: 'application/json',
        },
      });
      const timer = setTimeout(
        () => fail(Errors.webhookTimeout(`The custom allocation webhook at ${where} did not answer within ${this.timeoutMs} ms.`), true),
        this.timeoutMs,
      );
      request.on('error', (error: NodeJS.ErrnoException) => {
        const reason = String(error.code ?? error.message);
        fail(
          Errors.webhookFailed(`The custom allocation webhook at ${where} could not be reached (${reason}).`, { reason }),
          !TLS_FAILURES.test(reason),
        );
      });
      request.on('response', (response) => {
        const status = response.statusCode ?? 0;
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > this.maxResponseBytes) {
            fail(Errors.webhookInvalidResponse(`The custom allocation webhook at ${where} answered more than ${this.maxResponseBytes} bytes.`), false);
          } else chunks.push(chunk);
        });
        response.on('error', () => fail(Errors.webhookFailed(`The answer of the webhook at ${where} was cut off.`), true));
        response.on('end', () => {
          if (settled) return;
          if (status < 200 || status > 299) {
            fail(
              Errors.webhookFailed(`The custom allocation webhook at ${where} answered HTTP ${status}.`, { status: String(status) }),
              status >= 500,
            );
            return;
          }
          const text = Buffer.concat(chunks).toString('utf8').replace(/^\uFEFF/, '');
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            fail(Errors.webhookInvalidResponse(`The custom allocation webhook at ${where} did not answer JSON.`), false);
            return;
          }
          settled = true;
          clearTimeout(timer);
          resolve(parsed);
        });
      });
      request.end(body);
    });
  }
}

/**
 * The URL rule (ARCHITECTURE.md): `https://` anywhere, `http://` only to a loopback address
 * (localhost, 127.0.0.0/8, ::1). Anything else is refused with 400012 before any connection.
 */
export function checkWebhookUrl(webhookUrl: string): URL {
  let url: URL;
  try {
    url = new URL(webhookUrl);
  } catch {
    throw Errors.invalidAllocation('The custom allocation webhookUrl is not a URL.');
  }
  if (url.protocol === 'https:') return url;
  if (url.protocol === 'http:' && isLoopback(url.hostname)) return url;
  throw Errors.invalidAllocation(
    url.protocol === 'http:'
      ? `A custom allocation webhook over http:// must be on a loopback address, not '${url.hostname}'; use https://.`
      : `The custom allocation webhookUrl must be https:// (or http:// to loopback), not '${url.protocol}'.`,
  );
}

function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (host === '::1') return true;
  const v4 = ipv4ToNumber(host);
  return v4 !== undefined && v4 >>> 24 === 127;
}

function toArray(ca: HttpsWebhookClientOptions['ca']): Array<string | Buffer> {
  return ca === undefined ? [] : Array.isArray(ca) ? ca : [ca];
}

function readCaFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch {
    throw Errors.invalidField(`webhookCaFile '${path}' cannot be read.`);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
