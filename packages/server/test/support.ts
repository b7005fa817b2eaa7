import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import type { ConnectionInfo } from '../src/connection-file';
import type { CliIo } from '../src/cli/io';

/** Helpers for the server suites: temp dirs, captured logs and IO, and the built CLI as a child process. */

export const CLI = resolve(__dirname, '../dist/cli.js');

export function tempDir(prefix = 'opendps-server-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** A writable that keeps every line (pino's JSON lines). */
export function lineSink(): { stream: Writable; lines: string[] } {
  const lines: string[] = [];
  let partial = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      const text = partial + chunk.toString('utf8');
      const parts = text.split('\n');
      partial = parts.pop() ?? '';
      lines.push(...parts.filter(Boolean));
      callback();
    },
  });
  return { stream, lines };
}

/** A CliIo whose output the test reads. */
export function captureIo(cwd: string, env: NodeJS.ProcessEnv = {}): CliIo & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (text) => stdout.push(text), err: (text) => stderr.push(text), env, cwd };
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI to completion. */
export function runCli(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliRun> {
  assertBuilt();
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: options.cwd,
      env: { PATH: process.env.PATH, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolveRun({ code, stdout, stderr }));
  });
}

export interface CliServer {
  child: ChildProcess;
  connection: ConnectionInfo;
  stdout(): string;
  stderr(): string;
  /** SIGTERM and the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL (a crash); resolves when the process is gone. */
  kill(): Promise<void>;
}

/** `opendps start` as a child process, resolved once it logged `ready`. */
export function startCliServer(dataDir: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<CliServer> {
  assertBuilt();
  const child = spawn(process.execPath, [CLI, 'start', '--data-dir', dataDir, '--https-port', '0', '--mqtt-port', '0', '--amqp-port', '0', '--hub-port', '0', ...args], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  return new Promise((resolveStart, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the server did not log ready within 20 s:\n${stdout}\n${stderr}`));
    }, 20_000);
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const early = (code: number | null): void => {
      clearTimeout(timer);
      reject(new Error(`the server exited with ${code} before ready:\n${stdout}\n${stderr}`));
    };
    child.once('exit', early);
    child.stdout.on('data', (chunk: Buffer) => {
      const before = stdout;
      stdout += chunk.toString();
      if (!before.includes('ready') && stdout.includes('ready')) {
        clearTimeout(timer);
        child.off('exit', early);
        resolveStart({
          child,
          connection: JSON.parse(readFileSync(join(dataDir, 'connection.json'), 'utf8')) as ConnectionInfo,
          stdout: () => stdout,
          stderr: () => stderr,
          stop: async () => {
            child.kill('SIGTERM');
            return exited;
          },
          kill: async () => {
            child.kill('SIGKILL');
            await exited;
          },
        });
      }
    });
  });
}

function assertBuilt(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npx tsc -b packages/server' first.`);
}
