/*
 * Runs inside the private network and mount namespace of c-sdk.test.ts: OpenDPS (createServer from the
 * built packages/server) on the standard ports 8883, 5671 and 443, where the C SDK dials them, under
 * the dotted name the namespace's /etc/hosts resolves. It then serves the suite one JSON request per
 * stdin line and answers one JSON line each on stdout (the server's log goes to a file):
 *   {"id", "op": "enroll", "kind": "individual"|"group", "name", "key", "desired"}
 *   {"id", "op": "device", "args": [...]}        runs the C driver (test/peers/c-device) with these
 *   {"id", "op": "telemetry", "deviceId"}        what the built-in hubs received from that device
 *   {"id", "op": "log", "match"}                 the server's log lines containing `match`
 *   node c-sdk-netns.js <config json>            {repo, dataDir, host, binary}
 */
'use strict';
const { spawn } = require('node:child_process');
const { createWriteStream, readFileSync } = require('node:fs');
const https = require('node:https');
const path = require('node:path');
const readline = require('node:readline');
const { setTimeout, clearTimeout } = require('node:timers');

const config = JSON.parse(process.argv[2]);
const { createServer, createLogger } = require(path.join(config.repo, 'packages/server/dist/index.js'));
const { ProvisioningServiceClient } = require('azure-iot-provisioning-service');
const { RestApiClient, Http } = require('azure-iot-http-base');
const { ConnectionString, SharedAccessSignature } = require('azure-iot-common');

const logFile = path.join(config.dataDir, 'server.log');

/** The unmodified service SDK on 443 trusting the dev CA (the process started before the CA existed). */
function serviceClient(connectionString, ca) {
  const cn = ConnectionString.parse(connectionString, ['HostName', 'SharedAccessKeyName', 'SharedAccessKey']);
  const sas = SharedAccessSignature.create(cn.HostName, cn.SharedAccessKeyName, cn.SharedAccessKey, Math.floor(Date.now() / 1000) + 3600);
  const settings = { host: cn.HostName, sharedAccessSignature: sas.toString() };
  const http = new Http();
  http.setOptions({ ca, http: { agent: new https.Agent({ ca, keepAlive: false }) } });
  return new ProvisioningServiceClient(settings, new RestApiClient(settings, 'opendps-c-sdk-suite', http));
}

function runDevice(args, timeoutMs) {
  return new Promise((resolve) => {
    const child = spawn(config.binary, args, { env: { PATH: process.env.PATH, C_DEVICE_TRACE: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const steps = {};
      for (const line of stdout.split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          const step = JSON.parse(line);
          steps[step.step] = step;
        } catch {
          // a log line that happens to start with a brace
        }
      }
      // The SDK's own error log lines, from the whole output (the tail kept below may miss early ones).
      const errors = `${stdout}\n${stderr}`.split('\n').filter((line) => line.includes('LOG_LEVEL_ERROR')).slice(0, 50);
      resolve({ code, signal, steps, errors, output: `${stdout}\n${stderr}`.slice(-20_000) });
    });
  });
}

async function main() {
  const log = createWriteStream(logFile);
  const server = await createServer({
    dataDir: config.dataDir,
    host: config.host,
    ports: { mqtt: 8883, amqp: 5671, https: 443 },
    logger: createLogger({ level: 'debug', destination: log }),
    instanceRefreshMs: 100,
  });
  const ca = readFileSync(server.caFile, 'utf8');
  const service = serviceClient(server.connection.serviceConnectionString, ca);

  const handlers = {
    enroll: async ({ kind, name, key, desired }) => {
      const attestation = { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: key } };
      const initialTwin = { properties: { desired } };
      if (kind === 'group') await service.createOrUpdateEnrollmentGroup({ enrollmentGroupId: name, attestation, initialTwin });
      else await service.createOrUpdateIndividualEnrollment({ registrationId: name, attestation, initialTwin });
      return {};
    },
    device: ({ args, timeoutMs }) => runDevice(args, timeoutMs ?? 120_000),
    telemetry: ({ deviceId }) =>
      [...server.hubs.values()].flatMap((hub) =>
        hub.receivedMessages(deviceId).map((message) => ({ properties: message.properties, payload: message.payload.toString('utf8') })),
      ),
    log: ({ match }) =>
      readFileSync(logFile, 'utf8')
        .split('\n')
        .filter((line) => line.includes(match)),
  };

  const send = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);
  send({
    ready: true,
    idScope: server.connection.idScope,
    caFile: server.caFile,
    hubs: server.connection.endpoints.hubs,
    endpoints: server.connection.endpoints,
  });

  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    const request = JSON.parse(line);
    try {
      send({ id: request.id, result: await handlers[request.op](request) });
    } catch (error) {
      send({ id: request.id, error: String(error && error.stack ? error.stack : error) });
    }
  }
  // stdin closed: the suite is done.
  await server.stop();
}

main().catch((error) => {
  process.stdout.write(`${JSON.stringify({ fatal: String(error && error.stack ? error.stack : error) })}\n`);
  process.exit(1);
});
