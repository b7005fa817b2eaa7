// Manage enrollments on a local OpenDPS with the unmodified Azure DPS service SDK.
//   node examples/manage-enrollments.js <registrationId>
// Reads the service connection string, HTTPS endpoint and CA from .opendps/connection.json.
// The SDK cannot take a port in the connection string's HostName, so off port 443 it is given an
// agent whose default port is OpenDPS's (on 443 with NODE_EXTRA_CA_CERTS, plain
// `ProvisioningServiceClient.fromConnectionString(cs)` does the same).
const fs = require('node:fs');
const https = require('node:https');
const { ProvisioningServiceClient } = require('azure-iot-provisioning-service');
const { RestApiClient, Http } = require('azure-iot-http-base');
const { ConnectionString, SharedAccessSignature } = require('azure-iot-common');

const [registrationId] = process.argv.slice(2);
const connection = JSON.parse(fs.readFileSync(process.env.OPENDPS_CONNECTION ?? '.opendps/connection.json', 'utf8'));
const ca = fs.readFileSync(connection.caFile, 'utf8');

function serviceClient() {
  const cs = ConnectionString.parse(connection.serviceConnectionString, ['HostName', 'SharedAccessKeyName', 'SharedAccessKey']);
  const expiry = Math.floor(Date.now() / 1000) + 3600;
  const config = { host: cs.HostName, sharedAccessSignature: SharedAccessSignature.create(cs.HostName, cs.SharedAccessKeyName, cs.SharedAccessKey, expiry).toString() };
  const agent = new https.Agent({ ca });
  agent.defaultPort = Number(connection.endpoints.https.split(':').pop());
  const http = new Http();
  http.setOptions({ ca, http: { agent } });
  return new ProvisioningServiceClient(config, new RestApiClient(config, 'opendps-example', http));
}

async function main() {
  const client = serviceClient();
  const created = await client.createOrUpdateIndividualEnrollment({
    registrationId,
    attestation: { type: 'symmetricKey' },
    initialTwin: { properties: { desired: { interval: 30 } } },
  });
  // No key given: the service generates one (64 bytes, as Azure does).
  console.log(`created ${created.responseBody.registrationId} with key ${created.responseBody.attestation.symmetricKey.primaryKey.length} characters long`);
  // Pages: pass the continuation token back (the SDK does not carry it from one page to the next).
  const query = client.createIndividualEnrollmentQuery({ query: '*' }, 100);
  const seen = [];
  while (query.hasMoreResults) {
    const page = await query.next(query.continuationToken);
    seen.push(...page.responseBody.map((enrollment) => enrollment.registrationId));
  }
  console.log('enrollments:', seen.join(', '));
  await client.deleteIndividualEnrollment(registrationId);
  console.log(`deleted ${registrationId}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
