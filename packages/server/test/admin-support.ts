import { request } from 'node:https';
import { connect } from 'node:tls';
import { createSasToken } from '@opendps/attestation';
import { readFileSync } from 'node:fs';
import { parseConnectionString, silentLogger } from '@opendps/model';
import { createServer, type RunningServer } from '../src';

/** Helpers for the admin API suites: signed HTTPS calls, device registration over HTTPS, TLS probes. */

export interface HttpsAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

export function httpsCall(options: {
  port: number;
  ca: string;
  method: string;
  path: string;
  authorization?: string;
  body?: unknown;
  rawBody?: string;
  headers?: Record<string, string>;
}): Promise<HttpsAnswer> {
  const payload = options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: 'localhost',
        port: options.port,
        method: options.method,
        path: options.path,
        ca: options.ca,
        headers: {
          ...options.headers,
          ...(options.authorization ? { authorization: options.authorization } : {}),
          ...(payload !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text ? (JSON.parse(text) as unknown) : undefined }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** A service SAS for a connection string (`sr` = its HostName, as the Azure service SDK signs). */
export function serviceSas(connectionString: string): string {
  const fields = parseConnectionString(connectionString);
  return createSasToken({
    resource: fields.HostName ?? '',
    key: fields.SharedAccessKey ?? '',
    keyName: fields.SharedAccessKeyName ?? '',
    expiry: Math.floor(Date.now() / 1000) + 3600,
  });
}

export function deviceSas(idScope: string, registrationId: string, key: string): string {
  return createSasToken({ resource: `${idScope}/registrations/${registrationId}`, key, keyName: 'registration', expiry: Math.floor(Date.now() / 1000) + 3600 });
}

/** Registers over the device HTTPS API and polls until the answer is final. */
export async function registerOverHttps(
  port: number,
  ca: string,
  idScope: string,
  registrationId: string,
  key: string,
): Promise<HttpsAnswer> {
  const authorization = deviceSas(idScope, registrationId, key);
  let answer = await httpsCall({
    port,
    ca,
    method: 'PUT',
    path: `/${idScope}/registrations/${registrationId}/register?api-version=2021-06-01`,
    authorization,
    body: { registrationId },
  });
  for (let polls = 0; answer.status === 202 && polls < 40; polls++) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    const operationId = (answer.body as { operationId: string }).operationId;
    answer = await httpsCall({
      port,
      ca,
      method: 'GET',
      path: `/${idScope}/registrations/${registrationId}/operations/${operationId}?api-version=2021-06-01`,
      authorization,
    });
  }
  return answer;
}

/** True when a TLS handshake with `localhost:port` trusting `ca` completes. */
export function tlsAccepts(port: number, ca: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: 'localhost', port, ca, servername: 'localhost' }, () => {
      socket.end();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

export function portOf(hostName: string): number {
  return Number(hostName.split(':').pop());
}

/** A call to the admin (or service) API, signed by the admin key unless `as` names another connection string. */
export type AdminCall = (
  method: string,
  path: string,
  options?: { as?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> },
) => Promise<HttpsAnswer>;

export interface AdminServer {
  server: RunningServer;
  ca: string;
  httpsPort: number;
  /** The deployment's admin connection string. */
  admin: string;
  /** The default instance's service connection string. */
  owner: string;
  call: AdminCall;
}

/** An in-process server on port 0 everywhere (hub on a port of its own), as the admin suites use it. */
export async function startAdminServer(dataDir: string): Promise<AdminServer> {
  const server = await createServer({ dataDir, ports: { https: 0, mqtt: 0, amqp: 0, hub: 0 }, logger: silentLogger, instanceRefreshMs: 200 });
  const ca = readFileSync(server.caFile, 'utf8');
  const httpsPort = portOf(server.endpoints.https);
  const admin = server.connection.adminConnectionString;
  const call: AdminCall = (method, path, options = {}) =>
    httpsCall({
      port: httpsPort,
      ca,
      method,
      path,
      authorization: serviceSas(options.as ?? admin),
      ...(options.body !== undefined ? { body: options.body } : {}),
      ...(options.rawBody !== undefined ? { rawBody: options.rawBody } : {}),
      ...(options.headers ? { headers: options.headers } : {}),
    });
  return { server, ca, httpsPort, admin, owner: server.connection.serviceConnectionString, call };
}
