/**
 * The README's quick start as a user runs it: `pnpm start`, then Ctrl-C. The terminal sends SIGINT to
 * the whole process group (pnpm, its shell, node); the drain ends the server with 0, and pnpm prints
 * no "ELIFECYCLE Command failed" (the script `exec`s node, so no shell dies of the signal).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const root = path.resolve(__dirname, '..');

test('Ctrl-C under `pnpm start` drains, exits 0 and prints no error line', async () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'opendps-pnpm-start-'));
  try {
    const child = spawn('pnpm', ['start', '--data-dir', dataDir, '--mqtt-port', '0', '--amqp-port', '0', '--https-port', '0'], {
      cwd: root,
      detached: true, // its own process group, as a terminal's foreground job
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Ready once connection.json is written (it is written when every listener is up).
    while (!existsSync(path.join(dataDir, 'connection.json'))) {
      if (child.exitCode !== null) throw new Error(`pnpm start ended early:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    process.kill(-(child.pid as number), 'SIGINT');
    expect(await exited).toBe(0);
    expect(output).not.toMatch(/ELIFECYCLE|Command failed/);
    expect(output).toMatch(/"msg":"drained"/);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}, 60_000);
