// One phase of registrations over MQTT/TLS, in a process of its own (never the server's): the
// device client of packages/loadgen, each registration on a fresh connection as the SDK does.
// Input: one JSON argument. Output: one JSON line of latency percentiles and errors.
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import attestation from '../../attestation/dist/index.js';
import device from '../../packages/loadgen/dist/device.js';

const spec = JSON.parse(process.argv[2] ?? '{}');
const { host, port, caFile, idScope, key, ids, concurrency = 1 } = spec;
const ca = readFileSync(caFile);
const latencies = [];
const errors = {};
let next = 0;
const started = performance.now();

async function worker() {
  while (next < ids.length) {
    const registrationId = ids[next++];
    try {
      const result = await device.registerDevice({ host, port, ca, idScope, registrationId, key: key ?? deriveFor(registrationId), timeoutMs: 30_000 });
      latencies.push(result.latencyMs);
    } catch (error) {
      const reason = `${error.reason ?? 'error'}${error.statusCode ? ` ${error.statusCode}` : ''}`;
      errors[reason] = (errors[reason] ?? 0) + 1;
      if (process.env.SCALE_DEBUG) process.stderr.write(`${error.message}\n`);
    }
  }
}

/** Group devices carry a key derived from the group key, as a device of a symmetric-key group does. */
function deriveFor(registrationId) {
  return attestation.deriveDeviceKey(spec.groupKey, registrationId);
}

await Promise.all(Array.from({ length: concurrency }, () => worker()));
const elapsedMs = performance.now() - started;
latencies.sort((a, b) => a - b);
const at = (q) => (latencies.length ? Number(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))].toFixed(2)) : null);
process.stdout.write(
  `${JSON.stringify({ count: latencies.length, errors, elapsedMs: Math.round(elapsedMs), ratePerSecond: Number(((latencies.length * 1000) / elapsedMs).toFixed(1)), p50: at(0.5), p90: at(0.9), p99: at(0.99), max: at(1) })}\n`,
);
