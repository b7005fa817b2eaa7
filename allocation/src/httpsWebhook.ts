import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions, type LookupOptions } from 'node:dns';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { rootCertificates } from 'node:tls';
import { DpsError, Errors, checkWebhookUrl as checkUrl, isLoopbackHost, webhookAddressRefusal, type WebhookUrlPolicy } from '@opendps/model';
import type { WebhookAllocationRequest, WebhookClient } from './webhook';

/** The resolver the client connects through (node:dns `lookup`'s callback form); replaceable in tests. */
export type WebhookLookup = (
  hostname: string,
  options: LookupAllOptions,
  callback: (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
) => void;

export interface HttpsWebhookClientOptions {
  /** Per attempt, connect to the end of the answer. Default 10 000 ms (docs/architecture.md). */
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
  /** `http://` to loopback (the config's `allowHttpWebhooks`). Default false. */
  allowHttp?: boolean;
  /** Link-local and cloud metadata addresses (the config's `allowLinkLocalWebhooks`). Default false. */
  allowLinkLocal?: boolean;
  /** Default: node:dns `lookup`. Every address it gives is checked before the socket connects. */
  lookup?: WebhookLookup;
}

const DEFAULTS = { timeoutMs: 10_000, attempts: 3, maxResponseBytes: 256 * 1024 };

/** One attempt's failure: the coded error a device would see, and whether trying again may help. */
interface AttemptFailure {
  error: DpsError;
  retryable: boolean;
}

/** TLS verification failures and refused addresses: retrying cannot help. */
const TLS_FAILURES = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ERR_TLS|ERR_SSL|HOSTNAME|EWEBHOOKADDRESS/;
const REFUSED_ADDRESS = 'EWEBHOOKADDRESS';

/**
 * Calls custom allocation webhooks over node:https (or node:http to loopback only, when allowed).
 * The URL rule is checked again before each call, and the address a name resolves to is checked
 * as the socket connects (DNS may answer differently than when the enrollment was written).
 * Network errors, timeouts and 5xx are retried with back-off; 4xx, redirects, untrusted
 * certificates and refused addresses are not. Error messages name the webhook by origin and path
 * only: the query carries the function key.
 */
export class HttpsWebhookClient implements WebhookClient {
  private readonly timeoutMs: number;
  private readonly attempts: number;
  private readonly backoffMs: (retry: number) => number;
  private readonly maxResponseBytes: number;
  private readonly httpsAgent: https.Agent;
  private readonly httpAgent = new http.Agent({ keepAlive: true });
  private readonly policy: WebhookUrlPolicy;
  private readonly resolve: WebhookLookup;

  constructor(options: HttpsWebhookClientOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? DEFAULTS.timeoutMs;
    this.attempts = Math.max(1, Math.floor(options.attempts ?? DEFAULTS.attempts));
    this.backoffMs = options.backoffMs ?? ((retry) => 500 * 2 ** (retry - 1));
    this.maxResponseBytes = options.maxResponseBytes ?? DEFAULTS.maxResponseBytes;
    const extra = [...toArray(options.ca), ...(options.caFile ? [readCaFile(options.caFile)] : [])];
    this.httpsAgent = new https.Agent({ keepAlive: true, ...(extra.length ? { ca: [...rootCertificates, ...extra] } : {}) });
    this.policy = { allowHttp: options.allowHttp ?? false, allowLinkLocal: options.allowLinkLocal ?? false };
    this.resolve = options.lookup ?? (dnsLookup as unknown as WebhookLookup);
  }

  async call(webhookUrl: string, request: WebhookAllocationRequest): Promise<unknown> {
    const url = checkUrl(webhookUrl, this.policy);
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

  /**
   * A `lookup` for the socket: resolves all addresses and refuses the connection when any is
   * forbidden (link-local or metadata; for http://, anything but loopback), so what is checked is
   * what is dialled. IP literals skip lookup; checkWebhookUrl has checked those already.
   */
  private guardedLookup(secure: boolean) {
    return (hostname: string, options: LookupOptions, callback: (...args: unknown[]) => void): void => {
      this.resolve(hostname, { ...options, all: true }, (error, addresses) => {
        if (error) return callback(error);
        const refused = addresses.find(({ address }) =>
          secure ? webhookAddressRefusal(address, this.policy) !== undefined : !isLoopbackHost(address),
        );
        if (refused || addresses.length === 0) {
          const why = refused ? (webhookAddressRefusal(refused.address, this.policy) ?? 'not a loopback address') : 'no address';
          return callback(Object.assign(new Error(`${hostname} resolves to ${refused?.address ?? 'nothing'} (${why})`), { code: REFUSED_ADDRESS }));
        }
        if (options.all) return callback(null, addresses);
        const [first] = addresses as [LookupAddress];
        return callback(null, first.address, first.family);
      });
    };
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
        lookup: this.guardedLookup(secure) as unknown as typeof dnsLookup,
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
        const what = reason === REFUSED_ADDRESS ? `is refused: ${error.message}` : `could not be reached (${reason})`;
        fail(
          Errors.webhookFailed(`The custom allocation webhook at ${where} ${what}.`, { reason }),
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
 * The URL rule (docs/architecture.md): `https://`, or `http://` to a loopback address when allowed;
 * link-local and metadata hosts only when allowed. Anything else is 400012 before any connection.
 */
export function checkWebhookUrl(webhookUrl: string, policy: WebhookUrlPolicy = {}): URL {
  return checkUrl(webhookUrl, policy);
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
