import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { createRootCa, createServerCertificate, type Issued } from '@opendps/pki';
import { DpsError, type DeviceRegistrationState } from '@opendps/model';
import type {
  OperationStatusRequest,
  RegistrationOutcome,
  RegistrationRequest,
  RegistrationService,
  RegistrationStatusRequest,
} from '@opendps/registration';
import type { HttpRoute, WebSocketUpgrade } from '../src';

/** One server CA for the whole suite file: RSA key generation is the slow part. */
let serverPki: { ca: Issued; server: Issued } | undefined;
export function pki(): { ca: Issued; server: Issued } {
  if (!serverPki) {
    const ca = createRootCa({ commonName: 'OpenDPS test server CA' });
    serverPki = { ca, server: createServerCertificate(ca, ['localhost', '127.0.0.1']) };
  }
  return serverPki;
}

export interface TestServer {
  port: number;
  ca: string;
  close(): Promise<void>;
}

/**
 * The listener as the server composes it: routes in order, a coded 404 otherwise, upgrades to the
 * WebSocket dispatcher. Client certificates are requested but not verified by TLS (X.509 devices).
 */
export async function startServer(routes: HttpRoute[], upgrade?: WebSocketUpgrade): Promise<TestServer> {
  const { ca, server: certificate } = pki();
  const server = https.createServer(
    { key: certificate.privateKeyPem, cert: certificate.certificatePem, requestCert: true, rejectUnauthorized: false },
    (req, res) => {
      const pathname = new URL(req.url ?? '/', 'https://localhost').pathname;
      const route = routes.find((candidate) => candidate.matches(pathname));
      if (route) {
        void route.handle(req, res);
        return;
      }
      res.writeHead(404, { 'content-type': 'application/json; charset=utf-8' }).end('{"errorCode":404001}');
    },
  );
  if (upgrade) server.on('upgrade', (req, socket, head) => upgrade.handleUpgrade(req, socket, head));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    ca: ca.certificatePem,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: unknown;
}

export interface RequestOptions {
  method: string;
  path: string;
  headers?: Record<string, string | number>;
  body?: string | Buffer;
  /** Written as separate chunks without Content-Length (chunked transfer encoding). */
  chunks?: Buffer[];
  agent?: https.Agent;
  cert?: string;
  key?: string;
}

export function request(server: TestServer, options: RequestOptions): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: 'localhost',
        port: server.port,
        ca: server.ca,
        method: options.method,
        path: options.path,
        headers: {
          ...(options.body !== undefined ? { 'content-length': Buffer.byteLength(options.body) } : {}),
          ...options.headers,
        },
        ...(options.agent ? { agent: options.agent } : { agent: false }),
        ...(options.cert ? { cert: options.cert, key: options.key } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    // The server may close while we still write an oversized body; the response decides the test.
    req.on('error', reject);
    if (options.chunks) {
      for (const chunk of options.chunks) req.write(chunk);
      req.end();
    } else {
      req.end(options.body);
    }
  });
}

/** What a scripted RegistrationService answers: a value, or a function of the request. */
type Script<Q, A> = (request: Q) => A | Promise<A>;

/** A RegistrationService with scripted answers that records every call, to test the wire mapping. */
export class ScriptedRegistration implements RegistrationService {
  readonly calls: Array<
    | { method: 'register'; request: RegistrationRequest }
    | { method: 'operationStatus'; request: OperationStatusRequest }
    | { method: 'registrationStatus'; request: RegistrationStatusRequest }
  > = [];

  onRegister: Script<RegistrationRequest, RegistrationOutcome> = () => {
    throw new DpsError(500, 500001, 'not scripted');
  };
  onOperationStatus: Script<OperationStatusRequest, RegistrationOutcome> = () => {
    throw new DpsError(500, 500001, 'not scripted');
  };
  onRegistrationStatus: Script<RegistrationStatusRequest, DeviceRegistrationState> = () => {
    throw new DpsError(500, 500001, 'not scripted');
  };

  async register(request: RegistrationRequest): Promise<RegistrationOutcome> {
    this.calls.push({ method: 'register', request });
    return this.onRegister(request);
  }

  async operationStatus(request: OperationStatusRequest): Promise<RegistrationOutcome> {
    this.calls.push({ method: 'operationStatus', request });
    return this.onOperationStatus(request);
  }

  async registrationStatus(request: RegistrationStatusRequest): Promise<DeviceRegistrationState> {
    this.calls.push({ method: 'registrationStatus', request });
    return this.onRegistrationStatus(request);
  }

  authenticate(): never {
    throw new Error('not used over HTTPS');
  }
}
