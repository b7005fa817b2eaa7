import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { Logger } from '@opendps/model';
import type { TlsFiles } from '../config';
import { unusable } from './dev-pki';

export interface TlsPair {
  cert: string;
  key: string;
}

/** Reads `--tls-cert` / `--tls-key`; an unusable pair is an error naming the files and why. */
export function readTlsFiles(files: TlsFiles): TlsPair {
  let pair: TlsPair;
  try {
    pair = { cert: readFileSync(files.cert, 'utf8'), key: readFileSync(files.key, 'utf8') };
  } catch (error) {
    throw new Error(`--tls-cert/--tls-key: cannot read ${(error as NodeJS.ErrnoException).path ?? 'the files'}: ${(error as Error).message}`);
  }
  const problem = unusable({ certificatePem: pair.cert, privateKeyPem: pair.key });
  if (problem) throw new Error(`--tls-cert ${files.cert} and --tls-key ${files.key} cannot be used: ${problem}.`);
  return pair;
}

/**
 * The certificate the listeners serve. With operator files it follows them: a change seen by
 * polling their mtime (editors and cert-manager replace files, which fs.watch loses track of), or
 * `reload()` on SIGHUP. A pair that is unusable mid-change (key written before the certificate) is
 * logged and the previous one kept.
 */
export class ServerTls {
  private pair: TlsPair;
  private readonly listeners: Array<(pair: TlsPair) => void> = [];
  private watching = false;
  private debounce: NodeJS.Timeout | undefined;

  constructor(
    initial: TlsPair,
    private readonly files: TlsFiles | undefined,
    private readonly logger: Logger,
  ) {
    this.pair = initial;
  }

  get current(): TlsPair {
    return this.pair;
  }

  onChange(listener: (pair: TlsPair) => void): void {
    this.listeners.push(listener);
  }

  /** Re-reads the files; true when a new certificate was applied. */
  reload(): boolean {
    if (!this.files) return false;
    let next: TlsPair;
    try {
      next = readTlsFiles(this.files);
    } catch (error) {
      this.logger.warn({ err: (error as Error).message }, 'TLS certificate not reloaded; the previous one stays');
      return false;
    }
    if (next.cert === this.pair.cert && next.key === this.pair.key) return false;
    this.pair = next;
    for (const listener of this.listeners) listener(next);
    this.logger.info({ cert: this.files.cert }, 'TLS certificate reloaded');
    return true;
  }

  /** Polls the files every `intervalMs`; a change reloads `debounceMs` after the last one seen. */
  watch(intervalMs = 2_000, debounceMs = 200): void {
    if (!this.files || this.watching) return;
    this.watching = true;
    const changed = (): void => {
      clearTimeout(this.debounce);
      this.debounce = setTimeout(() => this.reload(), debounceMs);
      this.debounce.unref();
    };
    for (const file of [this.files.cert, this.files.key]) watchFile(file, { interval: intervalMs, persistent: false }, changed);
  }

  close(): void {
    clearTimeout(this.debounce);
    if (!this.files || !this.watching) return;
    this.watching = false;
    for (const file of [this.files.cert, this.files.key]) unwatchFile(file);
  }
}
