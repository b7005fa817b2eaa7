import pino from 'pino';
import type { Logger } from '@opendps/model';

/**
 * The server's log: pino JSON lines on stdout, `time` in ISO-8601 UTC. Each line carries `category`
 * (`ServiceOperations`, `DeviceOperations`, as DPS diagnostic logs do). Keys, tokens and connection
 * strings are redacted wherever they might slip into a log object. Levels: docs/config.md.
 */
export const REDACTED_PATHS = [
  'authorization',
  '*.authorization',
  'headers.authorization',
  'req.headers.authorization',
  'sharedAccessSignature',
  '*.sharedAccessSignature',
  'connectionString',
  '*.connectionString',
  'serviceConnectionString',
  '*.serviceConnectionString',
  'primaryKey',
  '*.primaryKey',
  'secondaryKey',
  '*.secondaryKey',
  'privateKeyPem',
  '*.privateKeyPem',
  'redisUrl',
];

/** The levels `--log-level` / `OPENDPS_LOG_LEVEL` accept, most verbose first. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function createLogger(options: { level?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const root = pino(
    {
      name: 'opendps',
      level: options.level ?? envLevel(process.env.OPENDPS_LOG_LEVEL) ?? 'info',
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination ?? pino.destination({ fd: 1, sync: true }),
  );
  return new BoundLogger(root, {});
}

type Level = 'info' | 'warn' | 'error' | 'debug';

/**
 * pino appends a child's bindings to its parent's, so a component that re-binds `category` (or a
 * line that repeats a bound `hub`) writes the key twice. Here bindings are merged, later wins, and
 * every child is made from the root; a line whose fields repeat a bound key is merged before it is written.
 */
class BoundLogger implements Logger {
  private readonly logger: pino.Logger;

  constructor(
    private readonly root: pino.Logger,
    private readonly bindings: Readonly<Record<string, unknown>>,
  ) {
    this.logger = Object.keys(bindings).length ? root.child(bindings) : root;
  }

  info(fields: object, message?: string): void {
    this.write('info', fields, message);
  }

  warn(fields: object, message?: string): void {
    this.write('warn', fields, message);
  }

  error(fields: object, message?: string): void {
    this.write('error', fields, message);
  }

  debug(fields: object, message?: string): void {
    this.write('debug', fields, message);
  }

  child(bindings: object): Logger {
    return new BoundLogger(this.root, { ...this.bindings, ...bindings });
  }

  private write(level: Level, fields: object, message: string | undefined): void {
    if (!this.logger.isLevelEnabled(level)) return;
    for (const key in fields) {
      if (Object.prototype.hasOwnProperty.call(this.bindings, key)) {
        this.root[level]({ ...this.bindings, ...fields }, message);
        return;
      }
    }
    this.logger[level](fields, message);
  }
}

/** An unknown level from the environment is ignored here; `opendps start` refuses it with a message. */
function envLevel(value: string | undefined): LogLevel | undefined {
  const level = value?.trim().toLowerCase();
  return LOG_LEVELS.includes(level as LogLevel) ? (level as LogLevel) : undefined;
}
