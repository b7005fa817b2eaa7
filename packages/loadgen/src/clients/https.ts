import { randomUUID } from 'node:crypto';
import https from 'node:https';
import { openStream } from './stream';
import { API_VERSION, CLIENT_VERSION, dpsToken, registerBody } from './sas';
import { LoadgenError, type Answer, type ClientTarget, type Credentials, type Opened } from './types';

/**
 * DPS over HTTPS (docs/device-wire.md §4): PUT register, GET the operation while assigning. Each
 * request goes on its own TLS connection the client opened (and timed) itself; the first one is
 * open before the session is returned.
 */
export async function openHttps(target: ClientTarget, credentials: Credentials): Promise<Opened> {
  const { registrationId } = credentials;
  const open = () => openStream({ endpoint: target.https, ca: target.ca, credentials });
  const first = await open();
  let socket: Awaited<ReturnType<typeof open>>['stream'] | undefined = first.stream;
  let active = first.stream;
  const token = credentials.key ? dpsToken(target.idScope, registrationId, credentials.key) : undefined;
  const base = `/${encodeURIComponent(target.idScope)}/registrations/${encodeURIComponent(registrationId)}`;

  const send = (method: 'PUT' | 'GET', path: string, body: string, stream: typeof first.stream) =>
    new Promise<Answer>((resolve, reject) => {
      const request = https.request(
        {
          method,
          host: target.https.host,
          port: target.https.port,
          path: `${path}?api-version=${API_VERSION}`,
          createConnection: () => stream as never,
          headers: {
            accept: 'application/json',
            'content-type': 'application/json; charset=utf-8',
            'content-length': Buffer.byteLength(body),
            'user-agent': CLIENT_VERSION,
            'request-id': randomUUID(),
            connection: 'close',
            ...(token ? { authorization: token } : {}),
          },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => {
            let parsed: unknown;
            try {
              parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            } catch {
              parsed = undefined;
            }
            const retryAfter = Number(response.headers['retry-after']);
            const status = response.statusCode ?? 0;
            if (parsed === undefined && status < 300) return reject(new LoadgenError('protocol', `a ${status} answer without a JSON body`));
            resolve({ status, ...(response.headers['retry-after'] !== undefined && retryAfter >= 0 ? { retryAfterMs: retryAfter * 1000 } : {}), body: parsed });
          });
          response.on('error', (error) => reject(new LoadgenError('connection', error.message)));
        },
      );
      request.on('error', (error: Error & { code?: string }) => reject(new LoadgenError(error.code ?? 'connection', error.message)));
      request.end(body);
    });

  return {
    tcpTlsMs: first.tcpTlsMs,
    connectMs: 0,
    session: {
      async request(request) {
        // The first request uses the connection opened above; later ones open their own.
        const stream = socket ?? (await open()).stream;
        socket = undefined;
        active = stream;
        return request.kind === 'register'
          ? send('PUT', `${base}/register`, registerBody(registrationId, request.payload), stream)
          : send('GET', `${base}/operations/${request.operationId}`, '{}', stream);
      },
      close: () => active.destroy(),
      destroy: () => active.destroy(),
    },
  };
}
