/**
 * Smoke test of the service API with the unmodified `azure-iot-provisioning-service` SDK, pointed at
 * a local port the way service-api.md §9 option B describes (RestApiClient over an Http whose agent
 * carries the port and the test CA). The token comes from the SDK's own SharedAccessSignature.
 */
import { Agent } from 'node:https';
import { SharedAccessSignature } from 'azure-iot-common';
import { Http, RestApiClient } from 'azure-iot-http-base';
import { ProvisioningServiceClient } from 'azure-iot-provisioning-service';
import { instance, policy, startHarness, type Harness } from '../packages/service-api/test/helpers';

const owner = policy('provisioningserviceowner');
let h: Harness;
let client: ProvisioningServiceClient;

beforeAll(async () => {
  h = await startHarness([instance('a', '0ne0000000A', [owner])]);
  const agent = new Agent({ ca: h.ca, family: 4 } as ConstructorParameters<typeof Agent>[0]);
  (agent as unknown as { defaultPort: number }).defaultPort = h.port;
  const config = {
    host: 'localhost',
    sharedAccessSignature: SharedAccessSignature.create('localhost', owner.keyName, owner.primaryKey, Date.now()),
    tokenCredential: undefined,
  };
  const http = new Http();
  http.setOptions({ ca: h.ca, http: { agent } });
  client = new ProvisioningServiceClient(config as never, new RestApiClient(config as never, 'azure-iot-provisioning-service/smoke', http) as never);
});
afterAll(() => h.close());

const enrollment = (registrationId: string) => ({ registrationId, attestation: { type: 'symmetricKey' } });

it('creates, reads, queries page by page, bulk-deletes and deletes with the unmodified SDK', async () => {
  const created = (await client.createOrUpdateIndividualEnrollment(enrollment('sdk-1') as never)).responseBody;
  expect(created.registrationId).toBe('sdk-1');
  expect(created.attestation.symmetricKey?.primaryKey).toBeTruthy();

  const read = (await client.getIndividualEnrollment('sdk-1')).responseBody;
  expect(read.etag).toBe(created.etag);
  read.provisioningStatus = 'disabled';
  // the SDK sends If-Match because the object carries its etag
  const updated = (await client.createOrUpdateIndividualEnrollment(read)).responseBody;
  expect(updated.provisioningStatus).toBe('disabled');
  const stale = await client.createOrUpdateIndividualEnrollment(read).then(() => 'accepted', (error: Error) => error.name);
  expect(stale).toBe('InvalidEtagError');

  const mechanism = (await client.getIndividualEnrollmentAttestationMechanism('sdk-1')).responseBody;
  expect(mechanism.symmetricKey?.primaryKey).toBe(created.attestation.symmetricKey?.primaryKey);

  // bulk resolves only in callback style (service-api.md §10.1)
  const bulk = await new Promise<{ isSuccessful: boolean }>((resolve, reject) => {
    client.runBulkEnrollmentOperation(
      { mode: 'create', enrollments: ['sdk-2', 'sdk-3', 'sdk-4', 'sdk-5'].map(enrollment) } as never,
      (error, result) => (error ? reject(error) : resolve(result as { isSuccessful: boolean })),
    );
  });
  expect(bulk.isSuccessful).toBe(true);

  // next() needs the continuation token passed explicitly (service-api.md §10.2)
  const query = client.createIndividualEnrollmentQuery({ query: '*' }, 2);
  const seen: string[] = [];
  let pages = 0;
  while (query.hasMoreResults && pages < 10) {
    const page = (await query.next(query.continuationToken as never)) as unknown as { responseBody: unknown };
    seen.push(...(page.responseBody as Array<{ registrationId: string }>).map((item) => item.registrationId));
    pages += 1;
  }
  expect(pages).toBe(3);
  expect(seen).toEqual(['sdk-1', 'sdk-2', 'sdk-3', 'sdk-4', 'sdk-5']);

  const current = (await client.getIndividualEnrollment('sdk-1')).responseBody;
  await client.deleteIndividualEnrollment(current);
  // http-base picks the error class from IoT Hub codes it cannot find in a DPS body: the status tells
  const missing = await client.getIndividualEnrollment('sdk-1').then(
    () => 'found',
    (error: { response?: { statusCode?: number }; responseBody?: string }) => [error.response?.statusCode, JSON.parse(error.responseBody ?? '{}').errorCode],
  );
  expect(missing).toEqual([404, 404201]);
});

it('manages an enrollment group through the SDK paths (strict-encoded ids, lower-case attestation path)', async () => {
  await client.createOrUpdateEnrollmentGroup({ enrollmentGroupId: 'grp-sdk', attestation: { type: 'symmetricKey' } } as never);
  const mechanism = (await client.getEnrollmentGroupAttestationMechanism('grp-sdk')).responseBody;
  expect(mechanism.type).toBe('symmetricKey');
  const registrations = client.createEnrollmentGroupDeviceRegistrationStateQuery({ query: '*' }, 'grp-sdk');
  const page = (await registrations.next()) as unknown as { responseBody: unknown };
  expect(page.responseBody).toEqual([]);
  expect(registrations.hasMoreResults).toBe(false);
  await client.deleteEnrollmentGroup('grp-sdk');
});
