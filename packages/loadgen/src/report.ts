import { writeFileSync } from 'node:fs';
import { PHASES, type PhaseTimes } from './clients/types';
import type { LoadResult, Progress, Sample } from './run';
import { ratePerSecond, summarizeLatencies, type LatencySummary } from './stats';

/** The figures of a finished load: counts, errors by code, and percentiles per phase. */
export interface LoadSummary {
  transport: string;
  started: number;
  succeeded: number;
  failed: number;
  elapsedMs: number;
  /** Successful registrations per second. */
  rate: number;
  errors: Record<string, number>;
  phases: Record<keyof PhaseTimes, LatencySummary>;
  polls: number;
  retries: number;
  telemetry?: { devices: number; sent: number; failed: number; connect: LatencySummary; publish: LatencySummary };
  /** CPU time of the client process(es), user + system. */
  clientCpuMs?: number;
}

export function summarize(transport: string, result: LoadResult, clientCpuMs?: number): LoadSummary {
  const ok = result.samples.filter((sample) => sample.ok && sample.phases);
  const phases = Object.fromEntries(
    PHASES.map((phase) => [phase, summarizeLatencies(ok.map((sample) => (sample.phases as PhaseTimes)[phase]))]),
  ) as Record<keyof PhaseTimes, LatencySummary>;
  const { telemetry } = result;
  return {
    transport,
    started: result.samples.length,
    succeeded: ok.length,
    failed: result.samples.length - ok.length,
    elapsedMs: result.elapsedMs,
    rate: ratePerSecond(ok.length, Math.max(result.elapsedMs, Number.EPSILON)),
    errors: result.errors,
    phases,
    polls: ok.reduce((sum, sample) => sum + (sample.polls ?? 0), 0),
    retries: ok.reduce((sum, sample) => sum + (sample.retries ?? 0), 0),
    ...(telemetry
      ? {
          telemetry: {
            devices: telemetry.devices,
            sent: telemetry.sent,
            failed: telemetry.failed,
            connect: summarizeLatencies(telemetry.connectMs),
            publish: summarizeLatencies(telemetry.publishMs),
          },
        }
      : {}),
    ...(clientCpuMs !== undefined ? { clientCpuMs } : {}),
  };
}

export function formatProgress(progress: Progress): string {
  const seconds = progress.elapsedMs / 1000;
  const rate = seconds > 0 ? progress.succeeded / seconds : 0;
  const errors = Object.entries(progress.errors)
    .map(([code, n]) => `${code}:${n}`)
    .join(' ');
  const telemetry = progress.telemetryActive || progress.telemetrySent ? ` | telemetry ${progress.telemetrySent} sent, ${progress.telemetryActive} connected` : '';
  return `${seconds.toFixed(1)}s  done ${progress.done} (ok ${progress.succeeded})  ${rate.toFixed(1)}/s  in flight ${progress.inFlight}  errors ${errors || 0}${telemetry}`;
}

export function formatSummary(summary: LoadSummary): string {
  const fixed = (value: number) => (Number.isNaN(value) ? '-' : value.toFixed(1));
  const rows = PHASES.map((phase) => {
    const s = summary.phases[phase];
    return `  ${phase.padEnd(9)} ${fixed(s.p50).padStart(9)} ${fixed(s.p90).padStart(9)} ${fixed(s.p99).padStart(9)} ${fixed(s.max).padStart(9)}`;
  });
  const errors = Object.entries(summary.errors);
  return [
    `${summary.transport}: ${summary.succeeded}/${summary.started} assigned in ${(summary.elapsedMs / 1000).toFixed(2)} s, ${summary.rate.toFixed(1)}/s, ${summary.failed} failed, ${summary.polls} polls, ${summary.retries} retries` +
      (summary.clientCpuMs !== undefined ? `, client CPU ${summary.clientCpuMs.toFixed(0)} ms` : ''),
    `  phase (ms)      p50       p90       p99       max`,
    ...rows,
    ...(summary.telemetry
      ? [
          `  telemetry: ${summary.telemetry.devices} devices, ${summary.telemetry.sent} messages, ${summary.telemetry.failed} failed; ` +
            `hub connect p50 ${fixed(summary.telemetry.connect.p50)} p99 ${fixed(summary.telemetry.connect.p99)} ms, publish p50 ${fixed(summary.telemetry.publish.p50)} p99 ${fixed(summary.telemetry.publish.p99)} ms`,
        ]
      : []),
    ...(errors.length ? [`  errors: ${errors.map(([code, n]) => `${code} x${n}`).join(', ')}`] : []),
  ].join('\n');
}

/** JSON: the summary, JSON-safe (NaN becomes null). */
export function writeJsonReport(file: string, summary: LoadSummary): void {
  writeFileSync(file, `${JSON.stringify(summary, (_key, value: unknown) => (typeof value === 'number' && !Number.isFinite(value) ? null : value), 2)}\n`);
}

export const CSV_HEADER = ['index', 'registrationId', 'ok', 'code', ...PHASES.map((phase) => `${phase}Ms`), 'polls', 'retries', 'assignedHub'];

/** CSV: one row per device, phases in milliseconds. */
export function writeCsvReport(file: string, samples: readonly Sample[]): void {
  const cell = (value: unknown) => {
    const text = value === undefined ? '' : typeof value === 'number' ? String(Math.round(value * 1000) / 1000) : String(value);
    return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  };
  const lines = [...samples]
    .sort((a, b) => a.index - b.index)
    .map((sample) =>
      [sample.index, sample.registrationId, sample.ok, sample.code, ...PHASES.map((phase) => sample.phases?.[phase]), sample.polls, sample.retries, sample.assignedHub]
        .map(cell)
        .join(','),
    );
  writeFileSync(file, `${[CSV_HEADER.join(','), ...lines].join('\n')}\n`);
}
