import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** CPU time a process has used so far (user + system, ms), from /proc/PID/stat; undefined off Linux. */
export function processCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks();
  } catch {
    return undefined;
  }
}

let ticks: number | undefined;
function clockTicks(): number {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticks = 100;
    }
  }
  return ticks;
}

export interface Spawned {
  child: ChildProcess;
  /** The first stdout line matching `ready`. */
  line: string;
  /** Stdout up to `ready`. */
  stdout(): string;
  /** The last 64 KiB of stderr. */
  stderr(): string;
  stop(): Promise<void>;
}

/** Spawns `node args…` and resolves when a stdout line passes `ready`; kills it on failure or this process's exit. */
export function spawnUntil(args: string[], ready: (line: string) => boolean, options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Spawned> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env });
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill);
  let stdout = '';
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-65_536)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      kill();
      reject(new Error(`'${args.join(' ')}' was not ready within ${options.timeoutMs ?? 30_000} ms:\n${stdout}\n${stderr}`));
    }, options.timeoutMs ?? 30_000);
    const early = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`'${args.join(' ')}' exited with ${code} before it was ready:\n${stdout}\n${stderr}`));
    };
    child.once('close', early);
    let found = false;
    child.stdout?.on('data', (chunk: Buffer) => {
      // After `ready` the output is drained but not kept: a server may log for hours.
      if (found) return;
      stdout += chunk.toString();
      const line = stdout.split('\n').find((candidate) => ready(candidate));
      if (line === undefined) return;
      found = true;
      clearTimeout(timer);
      child.off('close', early);
      resolve({
        child,
        line,
        stdout: () => stdout,
        stderr: () => stderr,
        async stop() {
          process.removeListener('exit', kill);
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          const timer = setTimeout(kill, 10_000);
          await exited;
          clearTimeout(timer);
        },
      });
    });
  });
}
