#!/usr/bin/env node
import path from 'node:path';
import { LISTENER_NAMES, parseListeners } from './listeners';
import { createProbeEnrollment } from './probe';
import { formatReport, runFuzz } from './run';
import { attachTarget, spawnTarget, type Target } from './target';

const USAGE = `pnpm fuzz [options]
  --listeners a,b      ${LISTENER_NAMES.join(',')} (default: all)
  --frames N           frames per listener (default 100000)
  --seed S             (default 1)
  --batch B            replay only batch B of each listener
  --batch-frames N     frames per batch, checks after each (default 1000)
  --concurrency N      connections in flight (default 16)
  --max-rss-mb N       RSS bound of the server (default 512)
  --hang-ms N          a batch or liveness check slower than this is a hang (default 30000)
  --grace-ms N         time for connections and fds to be released (default 5000)
  --minimize 1         after a failure, replay its batch one connection at a time and print the culprit
  --data-dir DIR       fuzz a running server (its connection.json) instead of spawning one
  --pid PID            that server's process id, for the RSS and fd checks`;

function parseArgs(argv: string[]): Map<string, string> {
  const args = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i] as string;
    if (name === '--help' || name === '-h') args.set('help', '');
    else if (name.startsWith('--') && i + 1 < argv.length) args.set(name.slice(2), argv[++i] as string);
    else throw new Error(`unexpected argument '${name}'\n${USAGE}`);
  }
  return args;
}

function integer(args: Map<string, string>, name: string): number | undefined {
  const text = args.get(name);
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`--${name} takes a non-negative integer, not '${text}'`);
  return value;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  if (args.has('help')) {
    console.log(USAGE);
    return 0;
  }
  const listeners = parseListeners(args.get('listeners') ?? LISTENER_NAMES.join(','));
  const maxRssMb = integer(args, 'max-rss-mb') ?? 512;
  const dataDir = args.get('data-dir');
  const target: Target = dataDir
    ? attachTarget(path.resolve(dataDir), integer(args, 'pid'))
    : await spawnTarget({ cli: path.resolve(__dirname, '../../server/dist/cli.js') });
  const interrupted = () => void target.stop().finally(() => process.exit(130));
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    await createProbeEnrollment(target);
    const report = await runFuzz(target, {
      listeners,
      frames: integer(args, 'frames'),
      seed: integer(args, 'seed'),
      onlyBatch: integer(args, 'batch'),
      batchFrames: integer(args, 'batch-frames'),
      concurrency: integer(args, 'concurrency'),
      maxRssMb,
      hangMs: integer(args, 'hang-ms'),
      graceMs: integer(args, 'grace-ms'),
      minimize: args.get('minimize') === '1',
      log: (line) => console.error(line),
    });
    console.log(formatReport(report, maxRssMb));
    return report.clean ? 0 : 1;
  } finally {
    await target.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    console.error(error.message);
    process.exit(2);
  },
);
