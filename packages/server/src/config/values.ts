import { isIP } from 'node:net';
import { LOG_LEVELS, type LogLevel } from '../logger';
import { ConfigError } from './config-error';

/**
 * Validators for single configuration values. `source` names where the value came from
 * (`--https-port`, `OPENDPS_HTTPS_PORT`, `config.yaml: ports.https`) so the message points at it.
 */

const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export function parsePort(value: unknown, source: string): number {
  const number = typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isInteger(number) || number < 0 || number > 65535) {
    throw new ConfigError(`${source} must be a port number from 0 to 65535 (0 picks a free port); got ${show(value)}.`);
  }
  return number;
}

/** A deadline in whole milliseconds, above 0 and at most an hour. */
export function parseMilliseconds(value: unknown, source: string): number {
  return parseInteger(value, source, 1, 3_600_000, 'a whole number of milliseconds');
}

/** The largest value each limit takes: a million connections; an hour without a request. */
const LIMIT_MAX = { maxConnectionsPerAddress: 1_000_000, maxConnections: 1_000_000, mqttRequestTimeoutMs: 3_600_000 } as const;

/** One of the `limits`: a whole number from 1 to its maximum (flags and variables give it as text). */
export function parseLimit(name: keyof typeof LIMIT_MAX, value: unknown, source: string): number {
  return parseInteger(value, source, 1, LIMIT_MAX[name], 'a whole number');
}

/** A DNS name or an IP address, without a port: it becomes the connection string's HostName. */
export function parseHost(value: unknown, source: string): string {
  if (typeof value !== 'string' || !(HOST_NAME.test(value) || isIP(value) !== 0)) {
    throw new ConfigError(`${source} must be a host name or IP address without a port; got ${show(value)}.`);
  }
  return value;
}

/** An IP address to bind (`127.0.0.1`, `::1`, `0.0.0.0`, `::`): names could resolve to several. */
export function parseBindAddress(value: unknown, source: string): string {
  if (typeof value !== 'string' || isIP(value) === 0) {
    throw new ConfigError(`${source} must be an IP address such as 127.0.0.1 or 0.0.0.0 (all interfaces); got ${show(value)}.`);
  }
  return value;
}

export function parseRedisUrl(value: unknown, source: string): string {
  if (typeof value === 'string') {
    try {
      const url = new URL(value);
      if ((url.protocol === 'redis:' || url.protocol === 'rediss:') && url.hostname) return value;
    } catch {
      // fall through to the message below
    }
  }
  throw new ConfigError(`${source} must be a redis:// or rediss:// URL; got ${show(value, true)}.`);
}

/** An integer from `min` to `max`, from a flag or variable (a string) or a config file (a number). */
export function parseInteger(value: unknown, source: string, min: number, max: number, noun = 'an integer'): number {
  const number = typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isInteger(number) || number < min || number > max) {
    throw new ConfigError(`${source} must be ${noun} from ${min} to ${max}; got ${show(value)}.`);
  }
  return number;
}

/** `true`/`false` (flags and variables are strings; a config file may hold a JSON boolean). */
export function parseBoolean(value: unknown, source: string): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string' && /^(true|false)$/i.test(value.trim())) return value.trim().toLowerCase() === 'true';
  throw new ConfigError(`${source} must be true or false; got ${show(value)}.`);
}

export function parseServerKeyType(value: unknown, source: string): 'rsa' | 'ec' {
  if (value !== 'rsa' && value !== 'ec') throw new ConfigError(`${source} must be rsa or ec; got ${show(value)}.`);
  return value;
}

export function parseNonEmptyString(value: unknown, source: string): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new ConfigError(`${source} must be a non-empty string; got ${show(value)}.`);
  }
  return value;
}

/** Shows a bad value in a message; secrets (URLs may carry passwords) are only described. */
export function show(value: unknown, secret = false): string {
  if (value === undefined) return 'nothing';
  if (secret && typeof value === 'string') return `a string of ${value.length} characters`;
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

export function parseLogLevel(value: unknown, source: string): LogLevel {
  const level = typeof value === 'string' ? value.trim().toLowerCase() : value;
  if (!LOG_LEVELS.includes(level as LogLevel)) throw new ConfigError(`${source} must be one of ${LOG_LEVELS.join(', ')}; got ${show(value)}.`);
  return level as LogLevel;
}
