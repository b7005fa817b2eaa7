// The device side of docker/test.sh: enrolls a symmetric-key group through the load balancer,
// registers COUNT devices over MQTT/TLS through it (the loadgen package's device client), kills one
// node's container once KILL_AFTER devices are assigned, then reads every registration record back
// through the load balancer and checks the nodes' assignment counters against what the devices saw.
// Configuration comes as one JSON argument (see test.sh). Exit 0 only when every check passed.
'use strict';
const { Buffer } = require('node:buffer');
const { execFile } = require('node:child_process');
const { randomBytes } = require('node:crypto');
const { readFileSync } = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const path = require('node:path');
const { setTimeout: sleep } = require('node:timers/promises');

const repo = path.resolve(__dirname, '..');
const loadgenDir = path.join(repo, 'packages/loadgen');
const { registerDevice, runFleet, summarizeLatencies } = require(path.join(loadgenDir, 'dist/index.js'));
const { createSasToken, deriveDeviceKey } = require(require.resolve('@opendps/attestation', { paths: [loadgenDir] }));

const SERVICE_API_VERSION = '2021-10-01';
const ASSIGNMENTS = 'opendps_device_assignments_total';

const config = JSON.parse(process.argv[2] ?? '{}');
const {
  host, // the load balancer's address (loopback)
  ports, // { mqtt, https } on the load balancer
  caFile,
  idScope,
  serviceConnectionString,
  count = 1000,
  concurrency = 20,
  killAfter = Math.floor(count / 3),
  victim, // { container, metricsUrl }
  nodes = [], // [{ container, metricsUrl }] every node, victim included; metricsUrl null without metrics
  attempts = 6,
  retryDelayMs = 1000,
  timeoutMs = 30000,
  groupId = `docker-test-${randomBytes(3).toString('hex')}`,
  groupKey = randomBytes(32).toString('base64'),
} = config;
const ca = readFileSync(caFile, 'utf8');
const agent = new https.Agent({ keepAlive: true, ca, maxSockets: 4 });
const checks = [];
const check = (name, ok, detail) => {
  checks.push({ name, ok, detail });
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}: ${detail}`);
};

function serviceToken() {
  const fields = Object.fromEntries(serviceConnectionString.split(';').map((part) => {
    const at = part.indexOf('=');
    return [part.slice(0, at), part.slice(at + 1)];
  }));
  return createSasToken({
    resource: fields.HostName,
    key: fields.SharedAccessKey,
    keyName: fields.SharedAccessKeyName,
    expiry: Math.floor(Date.now() / 1000) + 3600,
    encodeResource: true,
  });
}

/** One service API call through the load balancer; resolves { status, headers, body }. */
function service(method, apiPath, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? '' : JSON.stringify(body);
    const request = https.request(
      {
        host, port: ports.https, agent, method,
        path: `${apiPath}?api-version=${SERVICE_API_VERSION}`,
        headers: { authorization: serviceToken(), 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers },
        timeout: 15000,
      },
      (response) => {
        const chunks = [];
        response.on('data', (chunk) => chunks.push(chunk));
        response.on('end', () => {
          const answer = Buffer.concat(chunks).toString('utf8');
          resolve({ status: response.statusCode, headers: response.headers, body: answer ? JSON.parse(answer) : undefined });
        });
        response.on('error', reject);
      },
    );
    request.on('timeout', () => request.destroy(new Error(`${method} ${apiPath}: no answer in 15 s`)));
    request.on('error', reject);
    request.end(text);
  });
}

/** Every registration record of the group, page by page. */
async function registrationsOf(group) {
  const records = [];
  let continuation;
  for (let page = 0; page < 1000; page++) {
    const headers = { 'x-ms-max-item-count': '200', ...(continuation ? { 'x-ms-continuation': continuation } : {}) };
    const answer = await service('POST', `/registrations/${encodeURIComponent(group)}/query`, { query: '*' }, headers);
    if (answer.status !== 200) throw new Error(`registration query answered ${answer.status}: ${JSON.stringify(answer.body)}`);
    records.push(...answer.body);
    continuation = answer.headers['x-ms-continuation'];
    if (!continuation) return records;
  }
  throw new Error('registration query: more than 1000 pages');
}

/** The sum of a counter over its series in a Prometheus text exposition: 0 when declared with no
 * series yet (a labelled counter has none until first counted), undefined when not exported. */
function counterSum(text, name) {
  let sum = text.includes(`# TYPE ${name} counter`) ? 0 : undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum = (sum ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

function scrape(url) {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { timeout: 2000 }, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('end', () => (response.statusCode === 200 ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(new Error(`${url}: ${response.statusCode}`))));
    });
    request.on('timeout', () => request.destroy(new Error(`${url}: no answer`)));
    request.on('error', reject);
  });
}

function kill(container) {
  return new Promise((resolve, reject) => {
    execFile('podman', ['kill', '--signal', 'KILL', container], (error, _stdout, stderr) => (error ? reject(new Error(`podman kill ${container}: ${stderr || error.message}`)) : resolve()));
  });
}

async function main() {
  const started = Date.now();
  const put = await service('PUT', `/enrollmentGroups/${groupId}`, {
    enrollmentGroupId: groupId,
    attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: groupKey, secondaryKey: randomBytes(32).toString('base64') } },
    provisioningStatus: 'enabled',
  });
  if (put.status !== 200 && put.status !== 201) throw new Error(`enrollment group PUT answered ${put.status}: ${JSON.stringify(put.body)}`);
  console.log(`enrollment group ${groupId} created through the load balancer`);

  // Each node's assignment counter, scraped every 250 ms: the victim's last value before the kill
  // is all that is left of it afterwards, as in Prometheus.
  const withMetrics = nodes.filter((node) => node.metricsUrl);
  const lastScrape = new Map();
  let killedAt; // when the kill was sent
  let killedBy; // when podman kill returned: the victim answers nothing after this
  let killing;
  let scraping = true;
  const scraper = (async () => {
    while (scraping) {
      await Promise.all(withMetrics.map(async (node) => {
        if (node.container === victim.container && killedAt !== undefined) return;
        try {
          const at = Date.now();
          const value = counterSum(await scrape(node.metricsUrl), ASSIGNMENTS);
          if (!(node.container === victim.container && killedAt !== undefined)) lastScrape.set(node.container, { at, value });
        } catch {
          // a node being killed stops answering; its last value stands
        }
      }));
      await sleep(250);
    }
  })();

  const answeredAt = []; // when each assigned answer arrived
  let registerAttempts = 0;
  let retried = 0;
  const retryReasons = {};
  const fleet = await runFleet({
    count,
    concurrency,
    maxDurationMs: 8 * 60_000,
    register: async (index) => {
      const registrationId = `${groupId}-${index}`;
      const key = deriveDeviceKey(groupKey, registrationId);
      for (let attempt = 1; ; attempt++) {
        registerAttempts++;
        try {
          const result = await registerDevice({ host, port: ports.mqtt, ca, idScope, registrationId, key, timeoutMs });
          answeredAt.push(Date.now());
          if (answeredAt.length === killAfter && !killing) {
            killedAt = Date.now();
            killing = kill(victim.container).then(() => {
              killedBy = Date.now();
              console.log(`killed ${victim.container} (SIGKILL) after ${killAfter} assigned devices`);
            });
          }
          return { ...result, attempts: attempt };
        } catch (error) {
          // A device whose connection broke (its node was killed) registers again, as the SDK's
          // retry policy does; a refusal (4xx but 429) is final.
          const transient = ['connection', 'timeout'].includes(error.reason)
            || (error.reason === 'protocol' && /closed|ECONNRESET|EPIPE/i.test(error.message))
            || (error.reason === 'status' && (error.statusCode === 429 || error.statusCode >= 500));
          if (!transient || attempt >= attempts) throw error;
          retried++;
          retryReasons[error.reason] = (retryReasons[error.reason] ?? 0) + 1;
          await sleep(retryDelayMs);
        }
      }
    },
  });
  await killing;
  scraping = false;
  await scraper;

  const latency = summarizeLatencies(fleet.results.map((result) => result.latencyMs));
  console.log(`fleet: ${fleet.succeeded} assigned, ${fleet.failed} failed, ${fleet.notStarted} not started of ${count} in ${(fleet.elapsedMs / 1000).toFixed(1)} s `
    + `(${fleet.perSecond.toFixed(0)}/s, p50 ${latency.p50.toFixed(0)} ms, p99 ${latency.p99.toFixed(0)} ms); ${registerAttempts} attempts, ${retried} retried ${JSON.stringify(retryReasons)}`);
  for (const failure of fleet.failures.slice(0, 5)) console.log(`  failed device ${failure.index}: ${failure.message}`);

  check('kill', killedAt !== undefined, killedAt !== undefined ? `${victim.container} killed mid-run, after ${killAfter} of ${count} devices` : 'the kill never happened');
  check('devices', fleet.succeeded === count, `${fleet.succeeded}/${count} devices got an assignment (${fleet.failed} failed, ${fleet.notStarted} not started)`);

  // Every device the fleet saw assigned has its record, read back through the load balancer.
  const records = await registrationsOf(groupId);
  const assigned = new Map(records.filter((record) => record.status === 'assigned' && record.assignedHub).map((record) => [record.registrationId, record]));
  const expected = fleet.results.map((result) => result.deviceId);
  const missing = expected.filter((id) => !assigned.has(id));
  const hubMismatch = fleet.results.filter((result) => assigned.get(result.deviceId)?.assignedHub !== result.assignedHub);
  const byHub = {};
  for (const record of assigned.values()) byHub[record.assignedHub] = (byHub[record.assignedHub] ?? 0) + 1;
  check('records', assigned.size === count && missing.length === 0,
    `${assigned.size} assigned records of ${records.length} (${missing.length} lost${missing.length ? `: ${missing.slice(0, 5).join(', ')}` : ''}); by hub ${JSON.stringify(byHub)}`);
  check('hubs', hubMismatch.length === 0, `${fleet.results.length - hubMismatch.length}/${fleet.results.length} records name the hub the device was told`);

  // Metrics: every answered assignment was counted by the node that made it. Only answers that
  // arrived between the victim's last scrape and its death may have been counted by the victim
  // alone, unseen; no node counts more than one per register attempt.
  let metrics = { available: false };
  if (withMetrics.length === 0) {
    console.log('metrics: not checked: the image serves no metrics (--metrics-port is not in this build)');
  } else {
    const survivors = withMetrics.filter((node) => node.container !== victim.container);
    const finals = await Promise.all(survivors.map(async (node) => ({ node: node.container, value: counterSum(await scrape(node.metricsUrl), ASSIGNMENTS) })));
    const victimLast = lastScrape.get(victim.container);
    const total = finals.reduce((sum, entry) => sum + (entry.value ?? 0), 0) + (victimLast?.value ?? 0);
    const afterVictimScrape = answeredAt.filter((at) => at > (victimLast?.at ?? started) && at <= (killedBy ?? Infinity)).length;
    const lower = fleet.succeeded - afterVictimScrape;
    metrics = { available: true, survivors: finals, victimLast, total, lowerBound: lower, upperBound: registerAttempts };
    const unexported = finals.filter((entry) => entry.value === undefined).map((entry) => entry.node);
    check('metrics', unexported.length === 0 && total >= lower && total <= registerAttempts,
      `${ASSIGNMENTS}: survivors ${finals.map((entry) => `${entry.node}=${entry.value}`).join(', ')}, ${victim.container}=${victimLast?.value ?? 'never scraped'} before the kill; `
      + `sum ${total}, expected between ${lower} (assigned answers ${fleet.succeeded} less ${afterVictimScrape} between the victim's last scrape and its death) and ${registerAttempts} (register attempts)`);
  }

  const failed = checks.filter((entry) => !entry.ok);
  const summary = {
    devices: count, assigned: fleet.succeeded, lost: missing.length, records: records.length, attempts: registerAttempts, retried,
    seconds: Number(((Date.now() - started) / 1000).toFixed(1)), perSecond: Number(fleet.perSecond.toFixed(1)), latencyMs: { p50: Math.round(latency.p50), p99: Math.round(latency.p99) },
    byHub, metrics,
  };
  console.log(`summary ${JSON.stringify(summary)}`);
  // Not in the "N passed, N failed" form: CI reads the test suite's own closing line.
  console.log(`checks: ${checks.length - failed.length} of ${checks.length} passed`);
  agent.destroy();
  process.exitCode = failed.length === 0 ? 0 : 1;
}

main().catch((error) => {
  console.error(`cluster-check: ${error.stack ?? error}`);
  process.exitCode = 1;
});
