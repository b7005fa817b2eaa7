import { isIP } from 'node:net';
import { ConfigError } from './config-error';
import { show } from './values';

/**
 * Browser devices (docs/device-wire.md §5, "Browsers"): the host name whose TLS handshake asks for
 * no client certificate, which page origins may call the device REST API (CORS), and which may open
 * WebSockets.
 */

/** `*`, or a list of origins (`https://app.example.com[:port]`); flags and variables take them comma-separated. */
export type OriginList = '*' | string[];

export function parseOrigins(value: unknown, source: string): OriginList {
  const entries = typeof value === 'string' ? value.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '') : value;
  if (!Array.isArray(entries) || entries.length === 0) {
    throw new ConfigError(`${source} must be * or a comma-separated list of origins such as https://app.example.com; got ${show(value)}.`);
  }
  if (entries.length === 1 && entries[0] === '*') return '*';
  return entries.map((entry: unknown) => {
    if (typeof entry === 'string') {
      try {
        const url = new URL(entry);
        // An origin is scheme, host and port only, exactly as a browser sends it in `Origin`.
        if (url.origin !== 'null' && url.origin === entry.replace(/\/$/, '').toLowerCase()) return url.origin;
      } catch {
        // the message below names the entry
      }
    }
    throw new ConfigError(`${source}: ${show(entry)} is not an origin (scheme://host[:port], no path), nor *.`);
  });
}

/**
 * The browser-facing host name: configured, or `browser.{host}` when `--host` is a DNS name (an IP
 * address has no subdomains). Chromium resolves every `*.localhost` name to loopback by itself, so
 * the default `browser.localhost` needs no DNS.
 */
export function browserHostOf(config: { host: string; browserHost?: string }): string | undefined {
  if (config.browserHost) return config.browserHost.toLowerCase();
  return isIP(config.host) === 0 ? `browser.${config.host.toLowerCase()}` : undefined;
}
