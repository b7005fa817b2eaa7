import https from 'node:https';
import { createSasToken } from '@opendps/attestation';
import { parseConnectionString } from '@opendps/model';

/**
 * Just enough of the DPS service API to create enrollments for a benchmark: PUT with a service SAS
 * signed by the owner policy (docs/service-rest.md §8). Loopback HTTPS with the server's CA.
 */
export interface ServiceClient {
  putEnrollmentGroup(enrollmentGroupId: string, body: object): Promise<unknown>;
  putEnrollment(registrationId: string, body: object): Promise<unknown>;
}

const API_VERSION = '2021-10-01';

export function createServiceClient(options: { connectionString: string; endpoint: string; ca: string | Buffer }): ServiceClient {
  const fields = parseConnectionString(options.connectionString);
  const hostName = fields.HostName;
  const keyName = fields.SharedAccessKeyName;
  const key = fields.SharedAccessKey;
  if (!hostName || !keyName || !key) throw new Error('A service connection string needs HostName, SharedAccessKeyName and SharedAccessKey.');
  const [host = 'localhost', port = '443'] = options.endpoint.split(':');
  const agent = new https.Agent({ keepAlive: true, ca: options.ca, maxSockets: 8 });

  const put = (path: string, body: object) =>
    new Promise<unknown>((resolve, reject) => {
      const token = createSasToken({
        resource: hostName,
        key,
        keyName,
        expiry: Math.floor(Date.now() / 1000) + 3600,
        encodeResource: true,
      });
      const text = JSON.stringify(body);
      const request = https.request(
        {
          host,
          port: Number(port),
          agent,
          method: 'PUT',
          path: `${path}?api-version=${API_VERSION}`,
          headers: { authorization: token, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => {
            const answer = Buffer.concat(chunks).toString('utf8');
            const status = response.statusCode ?? 0;
            if (status >= 200 && status < 300) resolve(answer ? JSON.parse(answer) : undefined);
            else reject(new Error(`PUT ${path} answered ${status}: ${answer}`));
          });
          response.on('error', reject);
        },
      );
      request.on('error', reject);
      request.end(text);
    });

  return {
    putEnrollmentGroup: (id, body) => put(`/enrollmentGroups/${encodeURIComponent(id)}`, body),
    putEnrollment: (id, body) => put(`/enrollments/${encodeURIComponent(id)}`, body),
  };
}

/** A symmetric-key attestation with the given keys, as the service API takes it. */
export function symmetricKeyAttestation(primaryKey: string, secondaryKey: string): object {
  return { type: 'symmetricKey', symmetricKey: { primaryKey, secondaryKey } };
}
