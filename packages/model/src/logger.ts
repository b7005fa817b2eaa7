/**
 * The logging surface packages use: a subset of pino's, so the server passes its pino logger and
 * tests pass `silentLogger`. Categories follow DPS diagnostic logs: `ServiceOperations`,
 * `DeviceOperations`. Never log keys, tokens or signatures.
 */
export interface Logger {
  info(fields: object, message?: string): void;
  warn(fields: object, message?: string): void;
  error(fields: object, message?: string): void;
  debug(fields: object, message?: string): void;
  child(bindings: object): Logger;
}

export type LogCategory = 'ServiceOperations' | 'DeviceOperations';

const noop = (): void => undefined;
export const silentLogger: Logger = { info: noop, warn: noop, error: noop, debug: noop, child: () => silentLogger };
