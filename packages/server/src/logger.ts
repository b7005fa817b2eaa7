import pino from 'pino';
import type { Logger } from '@opendps/model';

/**
 * The server's log: pino JSON lines on stdout. Each line carries `category` (`ServiceOperations`,
 * `DeviceOperations`, as DPS diagnostic logs do). Keys, tokens and connection strings are redacted
 * wherever they might slip into a log object.
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

export function createLogger(options: { level?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  return pino(
    {
      name: 'opendps',
      level: options.level ?? process.env.OPENDPS_LOG_LEVEL ?? 'info',
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      base: { pid: process.pid },
    },
    options.destination ?? pino.destination({ fd: 1, sync: true }),
  );
}
