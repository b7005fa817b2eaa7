import { format } from 'node:util';
import { routeRheaDebug } from '@opendps/amqp';
import type { Logger } from '@opendps/model';

/** The longest library text kept in a log line. */
export const LIBRARY_TEXT_LIMIT = 512;

const CONSOLE_LEVELS = { log: 'info', info: 'info', warn: 'warn', error: 'warn', trace: 'warn', debug: 'debug' } as const;
type ConsoleMethod = keyof typeof CONSOLE_LEVELS;

/**
 * Libraries print on their own: rhea's console lines carry what came off the wire (an unknown
 * message section's descriptor, a peer's outcome as JSON, a peer's address), and its `debug`
 * traces whole frames. Each becomes one structured line with the text escaped and truncated, so a
 * peer can neither break the JSON-lines log nor forge a line in it. Returns the undo.
 */
export function routeLibraryOutput(logger: Logger): () => void {
  const log = logger.child({ category: 'DeviceOperations', source: 'library' });
  const methods = Object.keys(CONSOLE_LEVELS) as ConsoleMethod[];
  const saved = methods.map((method) => [method, console[method]] as const);
  for (const method of methods) {
    console[method] = (...args: unknown[]) => log[CONSOLE_LEVELS[method]]({ text: printable(format(...args)) }, 'library output');
  }
  const restoreDebug = routeRheaDebug((text) => log.debug({ text: printable(text) }, 'rhea trace'));
  return () => {
    for (const [method, original] of saved) console[method] = original;
    restoreDebug();
  };
}

/** Printable ASCII only (anything else as `\xNN` or `\uNNNN`), at most LIBRARY_TEXT_LIMIT characters kept. */
export function printable(text: string): string {
  const kept = text.length > LIBRARY_TEXT_LIMIT ? `${text.slice(0, LIBRARY_TEXT_LIMIT)}... (${text.length} characters)` : text;
  return kept.replace(/[^\x20-\x7e]/gu, (char) => {
    const code = char.codePointAt(0) ?? 0;
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
  });
}
