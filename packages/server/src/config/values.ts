import { isIP } from 'node:net';
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
  const number = typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isInteger(number) || number < 1 || number > 3_600_000) {
    throw new ConfigError(`${source} must be a whole number of milliseconds from 1 to 3600000; got ${show(value)}.`);
  }
  return number;
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
export function parseInteger(value: unknown, source: string, min: number, max: number): number {
  const number = typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isInteger(number) || number < min || number > max) {
    throw new ConfigError(`${source} must be an integer from ${min} to ${max}; got ${show(value)}.`);
  }
  return number;
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
