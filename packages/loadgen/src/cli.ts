import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { TRANSPORTS, type ClientTarget, type Endpoint, type Transport } from './clients/types';
import { readKeysFile, KeysFileError, type AttestationSpec } from './credentials';
import { runProcesses } from './processes';
import { formatProgress, formatSummary, summarize, writeCsvReport, writeJsonReport, type LoadSummary } from './report';
import type { LoadOptions, Progress } from './run';
import { createDeviceCertificateIssuer } from './x509';

/**
 * `opendps loadgen`: option declarations (in the shape of the `opendps` CLI's), their parsing into
 * `LoadOptions`, and the run with its progress and reports. The CLI command wraps `loadgenMain`.
 */
export interface LoadgenOptionSpec {
  type: 'string' | 'boolean';
  value?: string;
  help: string;
}

export const LOADGEN_OPTIONS: Record<string, LoadgenOptionSpec> = {
  'data-dir': { type: 'string', value: 'DIR', help: "read the ID scope, endpoints and CA of an OpenDPS from DIR/connection.json" },
  'id-scope': { type: 'string', value: 'SCOPE', help: 'the DPS ID scope (required without --data-dir)' },
  host: { type: 'string', value: 'HOST', help: 'the DPS host, e.g. global.azure-devices-provisioning.net (required without --data-dir)' },
  port: { type: 'string', value: 'PORT', help: "the port of the transport's listener (default: from connection.json, else 8883 / 5671 / 443)" },
  ca: { type: 'string', value: 'FILE', help: 'trust the CA certificates in FILE (default: connection.json caFile, else the system store)' },
  transport: { type: 'string', value: 'T', help: `${TRANSPORTS.join(', ')} (default mqtt)` },
  'group-key': { type: 'string', value: 'KEY', help: "a symmetric-key enrollment group's key; device keys are derived for PREFIX+index" },
  keys: { type: 'string', value: 'FILE', help: 'individual enrollments: CSV lines registrationId,key or a JSON array of {registrationId, key}' },
  'ca-cert': { type: 'string', value: 'FILE', help: 'X.509: issue each device a P-256 certificate (CN = PREFIX+index) from this CA…' },
  'ca-key': { type: 'string', value: 'FILE', help: '…and its private key; an X.509 enrollment group on that CA must exist' },
  'dev-ca': { type: 'boolean', help: "X.509 from the OpenDPS development CA (--data-dir's ca.pem and ca-key.pem)" },
  prefix: { type: 'string', value: 'P', help: 'registration ids are P0, P1, … (default loadgen-)' },
  concurrency: { type: 'string', value: 'N', help: 'closed loop: N registrations in flight (default 10)' },
  rate: { type: 'string', value: 'R', help: 'open loop: R new devices per second' },
  ramp: { type: 'string', value: 'SECONDS', help: 'open loop: climb linearly to --rate over SECONDS (default 0)' },
  count: { type: 'string', value: 'N', help: 'stop after N devices (default 100 without --duration; all of --keys)' },
  duration: { type: 'string', value: 'SECONDS', help: 'start no device after SECONDS' },
  'telemetry-interval': { type: 'string', value: 'SECONDS', help: 'after provisioning, connect to the assigned hub and send a message every SECONDS' },
  'telemetry-duration': { type: 'string', value: 'SECONDS', help: 'for how long each device sends telemetry (default 10)' },
  processes: { type: 'string', value: 'N', help: 'spread the devices over N client processes (default 1)' },
  timeout: { type: 'string', value: 'SECONDS', help: 'deadline of one registration (default 30)' },
  'max-retries': { type: 'string', value: 'N', help: "repeat a request answered 429 or 5xx after its retry-after, at most N times (default 5)" },
  'polling-interval-ms': { type: 'string', value: 'MS', help: 'wait before a poll when the service names no retry-after (default 2000)' },
  payload: { type: 'string', value: 'JSON', help: 'custom allocation payload sent with every register request' },
  json: { type: 'string', value: 'FILE', help: 'write the summary (counts, errors, percentiles per phase) as JSON' },
  csv: { type: 'string', value: 'FILE', help: 'write one row per device (phases in ms)' },
  'progress-interval': { type: 'string', value: 'SECONDS', help: 'how often progress is shown (default 1)' },
};

export const LOADGEN_DETAILS = [
  'Phases: tcpTls (TCP connect and TLS handshake), connect (MQTT CONNECT..SUBACK, AMQP SASL..links),',
  'register (request to first answer), polling (first answer to final), assigned (the whole registration).',
  'On a terminal a progress line is redrawn; otherwise progress and the summary are JSON lines on stdout.',
  'Exit status 1 when any device failed.',
].join('\n');

export class LoadgenUsageError extends Error {}

export interface LoadgenIo {
  out(text: string): void;
  err(text: string): void;
  /** A progress line redrawn in place (terminals); absent: progress as JSON lines on `out`. */
  redraw?: (text: string) => void;
  cwd: string;
}

export interface ParsedLoadgen {
  load: LoadOptions;
  processes: number;
  json?: string;
  csv?: string;
  progressIntervalMs: number;
}

type Values = Record<string, string | boolean | undefined | unknown>;

export function parseLoadgenOptions(values: Values, cwd: string): ParsedLoadgen {
  const text = (name: string) => (typeof values[name] === 'string' ? (values[name] as string) : undefined);
  const file = (name: string) => {
    const value = text(name);
    return value === undefined ? undefined : path.resolve(cwd, value);
  };
  const read = (name: string, where: string) => {
    if (!existsSync(where)) throw new LoadgenUsageError(`--${name}: no file '${where}'`);
    return readFileSync(where, 'utf8');
  };
  const number = (name: string, options: { min: number; max: number; integer?: boolean }) => {
    const value = text(name);
    if (value === undefined) return undefined;
    const parsed = Number(value);
    if (!/^\d+(\.\d+)?$/.test(value) || (options.integer && !Number.isInteger(parsed)) || parsed < options.min || parsed > options.max) {
      throw new LoadgenUsageError(`--${name} must be ${options.integer ? 'an integer' : 'a number'} from ${options.min} to ${options.max}, got '${value}'`);
    }
    return parsed;
  };

  const transport = (text('transport') ?? 'mqtt') as Transport;
  if (!TRANSPORTS.includes(transport)) throw new LoadgenUsageError(`--transport must be one of ${TRANSPORTS.join(', ')}, got '${transport}'`);

  // Where: connection.json first, flags over it.
  const dataDir = file('data-dir');
  let connection: { idScope?: string; caFile?: string; endpoints?: { mqtt?: string | null; amqp?: string | null; https?: string } } = {};
  if (dataDir) {
    const where = path.join(dataDir, 'connection.json');
    try {
      connection = JSON.parse(read('data-dir', where)) as typeof connection;
    } catch (error) {
      if (error instanceof LoadgenUsageError) throw error;
      throw new LoadgenUsageError(`--data-dir: ${where} is not JSON (${(error as Error).message})`);
    }
  }
  const idScope = text('id-scope') ?? connection.idScope;
  if (!idScope) throw new LoadgenUsageError('--id-scope is required (or --data-dir of an OpenDPS)');
  const fromFile = (endpoint: string | null | undefined, fallback: number): Endpoint | undefined => {
    if (!endpoint) return undefined;
    const at = endpoint.lastIndexOf(':');
    return { host: endpoint.slice(0, at), port: Number(endpoint.slice(at + 1)) || fallback };
  };
  const host = text('host');
  const port = number('port', { min: 1, max: 65535, integer: true });
  const endpoint = (fromConnection: string | null | undefined, fallback: number, used: boolean): Endpoint => {
    const known = fromFile(fromConnection, fallback);
    const resolvedHost = host ?? known?.host;
    if (!resolvedHost) throw new LoadgenUsageError('--host is required (or --data-dir of an OpenDPS)');
    return { host: resolvedHost, port: (used ? port : undefined) ?? known?.port ?? fallback };
  };
  const viaHttps = transport === 'https' || transport.endsWith('-ws');
  const caFile = file('ca') ?? (connection.caFile ? path.resolve(dataDir ?? cwd, connection.caFile) : undefined);
  const target: ClientTarget = {
    idScope,
    mqtt: endpoint(connection.endpoints?.mqtt, 8883, transport === 'mqtt'),
    amqp: endpoint(connection.endpoints?.amqp, 5671, transport === 'amqp'),
    https: endpoint(connection.endpoints?.https, 443, viaHttps),
    ...(caFile ? { ca: read('ca', caFile) } : {}),
  };

  // Who: exactly one kind of attestation.
  const prefix = text('prefix') ?? 'loadgen-';
  const groupKey = text('group-key');
  const keysFile = file('keys');
  let caCertFile = file('ca-cert');
  let caKeyFile = file('ca-key');
  if (values['dev-ca']) {
    if (!dataDir) throw new LoadgenUsageError('--dev-ca needs --data-dir');
    caCertFile ??= path.join(dataDir, 'ca.pem');
    caKeyFile ??= path.join(dataDir, 'ca-key.pem');
  }
  const kinds = [groupKey !== undefined, keysFile !== undefined, caCertFile !== undefined || caKeyFile !== undefined].filter(Boolean).length;
  if (kinds !== 1) throw new LoadgenUsageError('give exactly one of --group-key, --keys, or --ca-cert with --ca-key (or --dev-ca)');
  let attestation: AttestationSpec;
  if (groupKey !== undefined) {
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(groupKey) || Buffer.from(groupKey, 'base64').length < 16) throw new LoadgenUsageError('--group-key must be a base64 key of at least 16 bytes');
    attestation = { kind: 'group-key', groupKey, prefix };
  } else if (keysFile !== undefined) {
    read('keys', keysFile);
    try {
      attestation = { kind: 'keys', devices: readKeysFile(keysFile) };
    } catch (error) {
      if (error instanceof KeysFileError) throw new LoadgenUsageError(`--keys: ${error.message}`);
      throw error;
    }
  } else {
    if (!caCertFile || !caKeyFile) throw new LoadgenUsageError('X.509 needs both --ca-cert and --ca-key');
    attestation = { kind: 'x509', caCert: read('ca-cert', caCertFile), caKey: read('ca-key', caKeyFile), prefix };
    try {
      createDeviceCertificateIssuer(attestation.caCert, attestation.caKey);
    } catch (error) {
      throw new LoadgenUsageError(`--ca-cert/--ca-key: ${(error as Error).message}`);
    }
  }

  // How much, how fast.
  const rate = number('rate', { min: 0.001, max: 1_000_000 });
  const ramp = number('ramp', { min: 0, max: 86_400 });
  if (ramp !== undefined && rate === undefined) throw new LoadgenUsageError('--ramp needs --rate');
  const duration = number('duration', { min: 0.001, max: 7 * 86_400 });
  const count = number('count', { min: 1, max: 10_000_000, integer: true }) ?? (duration === undefined && attestation.kind !== 'keys' ? 100 : undefined);
  const telemetryInterval = number('telemetry-interval', { min: 0.001, max: 86_400 });
  const telemetryDuration = number('telemetry-duration', { min: 0, max: 7 * 86_400 });
  if (telemetryDuration !== undefined && telemetryInterval === undefined) throw new LoadgenUsageError('--telemetry-duration needs --telemetry-interval');
  let payload: unknown;
  const payloadText = text('payload');
  if (payloadText !== undefined) {
    try {
      payload = JSON.parse(payloadText);
    } catch {
      throw new LoadgenUsageError('--payload must be JSON');
    }
  }
  const timeout = number('timeout', { min: 0.01, max: 3600 });
  const maxRetries = number('max-retries', { min: 0, max: 1000, integer: true });
  const pollingIntervalMs = number('polling-interval-ms', { min: 0, max: 600_000, integer: true });

  const load: LoadOptions = {
    transport,
    target,
    attestation,
    concurrency: number('concurrency', { min: 1, max: 100_000, integer: true }) ?? 10,
    ...(rate !== undefined ? { rate, rampMs: (ramp ?? 0) * 1000 } : {}),
    ...(count !== undefined ? { count } : {}),
    ...(duration !== undefined ? { durationMs: duration * 1000 } : {}),
    ...(timeout !== undefined ? { timeoutMs: timeout * 1000 } : {}),
    ...(maxRetries !== undefined ? { maxRetries } : {}),
    ...(pollingIntervalMs !== undefined ? { pollingIntervalMs } : {}),
    ...(payload !== undefined ? { payload } : {}),
    ...(telemetryInterval !== undefined ? { telemetry: { intervalMs: telemetryInterval * 1000, durationMs: (telemetryDuration ?? 10) * 1000 } } : {}),
  };
  const json = file('json');
  const csv = file('csv');
  return {
    load,
    processes: number('processes', { min: 1, max: 256, integer: true }) ?? 1,
    ...(json ? { json } : {}),
    ...(csv ? { csv } : {}),
    progressIntervalMs: (number('progress-interval', { min: 0.05, max: 3600 }) ?? 1) * 1000,
  };
}

/** Runs a parsed load; resolves with the summary (and writes the files asked for). */
export async function runLoadgen(parsed: ParsedLoadgen, io: LoadgenIo): Promise<LoadSummary> {
  const onProgress = (progress: Progress) => {
    if (io.redraw) io.redraw(formatProgress(progress));
    else io.out(JSON.stringify({ type: 'progress', ...progress, elapsedMs: Math.round(progress.elapsedMs) }));
  };
  const { result, cpuMs } = await runProcesses(parsed.load, parsed.processes, { onProgress, progressIntervalMs: parsed.progressIntervalMs });
  const summary = summarize(parsed.load.transport, result, cpuMs);
  if (parsed.json) writeJsonReport(parsed.json, summary);
  if (parsed.csv) writeCsvReport(parsed.csv, result.samples);
  if (io.redraw) {
    io.redraw('');
    io.out(formatSummary(summary));
  } else {
    io.out(JSON.stringify({ type: 'summary', ...summary }, (_key, value: unknown) => (typeof value === 'number' && !Number.isFinite(value) ? null : value)));
  }
  const failures = result.samples.filter((sample) => !sample.ok).slice(0, 3);
  for (const failure of failures) io.err(`loadgen: ${failure.registrationId}: ${failure.code}: ${failure.message ?? ''}`);
  return summary;
}

/** Parse and run; 0 when every device was assigned (and sent its telemetry), 1 otherwise. */
export async function loadgenMain(values: Values, io: LoadgenIo): Promise<number> {
  const parsed = parseLoadgenOptions(values, io.cwd);
  const summary = await runLoadgen(parsed, io);
  return summary.failed === 0 && (summary.telemetry?.failed ?? 0) === 0 && summary.started > 0 ? 0 : 1;
}
