import { readFileSync } from 'node:fs';
import { BASELINE_KINDS, startBaseline, type BaselineKind } from './baselines';

/**
 * A baseline in a process of its own: `node baseline-server.js KIND CERT_FILE KEY_FILE` prints
 * `{"port":N}` once listening and runs until SIGTERM.
 */
async function main(): Promise<void> {
  const [kind, certFile, keyFile] = process.argv.slice(2);
  if (!BASELINE_KINDS.includes(kind as BaselineKind) || !certFile || !keyFile) {
    process.stderr.write(`usage: baseline-server.js ${BASELINE_KINDS.join('|')} CERT_FILE KEY_FILE\n`);
    process.exitCode = 2;
    return;
  }
  const running = await startBaseline(kind as BaselineKind, readFileSync(certFile, 'utf8'), readFileSync(keyFile, 'utf8'));
  process.stdout.write(`${JSON.stringify({ port: running.port })}\n`);
  process.once('SIGTERM', () => {
    void running.close().finally(() => process.exit(0));
  });
}

void main();
