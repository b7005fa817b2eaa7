import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createSasToken } from '@opendps/attestation';
import { ALL_RIGHTS, silentLogger, type AccessRight, type Logger, type ProvisioningInstance, type SharedAccessPolicy, type WebhookUrlPolicy } from '@opendps/model';
import { SqliteStore } from '@opendps/store';
import { createServiceApi } from '@opendps/service-api';

export interface SelfSigned {
  cert: string;
  key: string;
}

/** A fresh self-signed P-256 certificate from the openssl CLI (no forge needed). */
export function selfSigned(dir: string, commonName: string): SelfSigned {
  const keyFile = path.join(dir, `${commonName}.key`);
  const certFile = path.join(dir, `${commonName}.pem`);
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyFile, '-out', certFile, '-subj', `/CN=${commonName}`, '-days', '2',
    '-addext', `subjectAltName=DNS:${commonName}`,
  ], { stdio: 'pipe' });
  return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
}

export function policy(keyName: string, rights: readonly AccessRight[] = ALL_RIGHTS): SharedAccessPolicy {
  return { keyName, primaryKey: randomBytes(32).toString('base64'), secondaryKey: randomBytes(32).toString('base64'), rights: [...rights] };
}

export function instance(name: string, idScope: string, policies: SharedAccessPolicy[]): ProvisioningInstance {
  return { name, idScope, serviceHostName: 'localhost', policies, linkedHubs: [], allocationPolicy: 'hashed' };
}

export function token(policyOf: SharedAccessPolicy, options: { resource?: string; expiry?: number; key?: string } = {}): string {
  return createSasToken({
    resource: options.resource ?? 'localhost',
    key: options.key ?? policyOf.primaryKey,
    keyName: policyOf.keyName,
    expiry: options.expiry ?? Math.floor(Date.now() / 1000) + 3600,
  });
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: unknown;
}

export interface Harness {
  dir: string;
  store: SqliteStore;
  instances: ProvisioningInstance[];
  port: number;
  ca: string;
  call(method: string, pathAndQuery: string, options?: CallOptions): Promise<Reply>;
  close(): Promise<void>;
}

export interface CallOptions {
  /** An object is JSON-encoded; a string or Buffer is sent as is. */
  body?: unknown;
  /** Default: the owner token of the first instance. Null sends no Authorization. */
  authorization?: string | null;
  headers?: Record<string, string>;
}

/** A real HTTPS server on port 0, a real SQLite store in a temp dir, the service API mounted. */
export async function startHarness(
  instances: ProvisioningInstance[],
  logger: Logger = silentLogger,
  options: { webhooks?: WebhookUrlPolicy } = {},
): Promise<Harness> {
  const dir = mkdtempSync(path.join(tmpdir(), 'service-api-'));
  const tls = selfSigned(dir, 'localhost');
  const store = new SqliteStore(path.join(dir, 'opendps.db'));
  const api = createServiceApi({ store, instances: () => instances, logger, ...options });
  const server: Server = createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    const pathname = (req.url ?? '/').split('?')[0] ?? '/';
    if (api.matches(pathname)) void api.handle(req, res);
    else {
      res.writeHead(418);
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const owner = instances[0]?.policies[0];
  const call = (method: string, pathAndQuery: string, options: CallOptions = {}): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const payload =
        options.body === undefined
          ? undefined
          : typeof options.body === 'string' || Buffer.isBuffer(options.body)
            ? options.body
            : JSON.stringify(options.body);
      const authorization = options.authorization === undefined ? (owner ? token(owner) : undefined) : options.authorization;
      const req = request(
        {
          host: '127.0.0.1', port, method, path: pathAndQuery, ca: tls.cert, servername: 'localhost', agent: false,
          headers: {
            ...(authorization ? { authorization } : {}),
            ...(payload !== undefined ? { 'content-type': 'application/json; charset=utf-8' } : {}),
            ...options.headers,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let json: unknown;
            try {
              json = text ? JSON.parse(text) : undefined;
            } catch {
              json = undefined;
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
          });
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  return {
    dir, store, instances, port, ca: tls.cert, call,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
