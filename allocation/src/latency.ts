import { Errors, type LinkedHub } from '@opendps/model';

/**
 * Where lowest-latency allocation learns how far a device is from each hub. Pluggable: the built-in
 * source reads the config's `latency` map; a deployment may measure instead (docs/architecture.md).
 */
export interface LatencySource {
  /**
   * Milliseconds from the device at `clientAddress` to each of `hubs` it knows a figure for, keyed by
   * hub name. Empty when the device's location is unknown (allocation then falls back to the hash).
   */
  latencies(clientAddress: string | undefined, hubs: readonly LinkedHub[]): Promise<ReadonlyMap<string, number>> | ReadonlyMap<string, number>;
}

/** The config file's `latency` key: CIDR -> location, location -> hub name (or host name) -> ms. */
export interface LatencyConfig {
  networks?: Record<string, string>;
  table?: Record<string, Record<string, number>>;
}

interface Network {
  base: number;
  prefix: number;
  location: string;
}

/**
 * The device's location is the longest-prefix match of its IPv4 source address (`::ffff:a.b.c.d`
 * mapped) in `networks`; its latency to a hub is `table[location][hub name or host name]`.
 * Other IPv6 addresses have no location. Bad config is a coded 400002 at construction.
 */
export class ConfiguredLatencySource implements LatencySource {
  private readonly networks: Network[];
  private readonly table: Map<string, Map<string, number>>;

  constructor(config: LatencyConfig = {}) {
    this.networks = Object.entries(config.networks ?? {})
      .map(([cidr, location]) => parseNetwork(cidr, location))
      .sort((a, b) => b.prefix - a.prefix);
    this.table = new Map();
    for (const [location, row] of Object.entries(config.table ?? {})) {
      if (!row || typeof row !== 'object' || Array.isArray(row)) {
        throw Errors.invalidField(`latency.table['${location}'] must map hub names to milliseconds.`);
      }
      const figures = new Map<string, number>();
      for (const [hub, ms] of Object.entries(row)) {
        if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
          throw Errors.invalidField(`latency.table['${location}']['${hub}'] must be a non-negative number of milliseconds.`);
        }
        figures.set(hub.toLowerCase(), ms);
      }
      this.table.set(location, figures);
    }
  }

  /** The configured location of an address, or undefined (not IPv4, or in no configured network). */
  locationOf(clientAddress: string | undefined): string | undefined {
    const address = clientAddress === undefined ? undefined : ipv4ToNumber(clientAddress);
    if (address === undefined) return undefined;
    return this.networks.find((network) => inNetwork(address, network))?.location;
  }

  latencies(clientAddress: string | undefined, hubs: readonly LinkedHub[]): ReadonlyMap<string, number> {
    const result = new Map<string, number>();
    const location = this.locationOf(clientAddress);
    const row = location === undefined ? undefined : this.table.get(location);
    if (!row) return result;
    for (const hub of hubs) {
      const ms = row.get(hub.name.toLowerCase()) ?? row.get(hub.hostName.toLowerCase());
      if (ms !== undefined) result.set(hub.name, ms);
    }
    return result;
  }
}

function parseNetwork(cidr: string, location: unknown): Network {
  const [address, prefixText, extra] = cidr.trim().split('/');
  const base = address === undefined ? undefined : ipv4ToNumber(address);
  const prefix = prefixText === undefined ? 32 : /^\d{1,2}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (base === undefined || extra !== undefined || !(prefix >= 0 && prefix <= 32)) {
    throw Errors.invalidField(`latency.networks key '${cidr}' is not an IPv4 CIDR such as 10.0.0.0/8.`);
  }
  if (typeof location !== 'string' || location === '') {
    throw Errors.invalidField(`latency.networks['${cidr}'] must name a location.`);
  }
  return { base: (base & mask(prefix)) >>> 0, prefix, location };
}

function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

function inNetwork(address: number, network: Network): boolean {
  return ((address & mask(network.prefix)) >>> 0) === network.base;
}

/**
 * Dotted-quad IPv4, or IPv4-mapped IPv6 as a uint32: `::ffff:a.b.c.d` (how Node reports dual-stack
 * peers) or its hex form `::ffff:7f00:1` (how WHATWG URLs normalise it). Anything else: undefined.
 */
export function ipv4ToNumber(text: string): number | undefined {
  const trimmed = text.trim();
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(trimmed);
  if (hex) return parseInt(hex[1] as string, 16) * 65536 + parseInt(hex[2] as string, 16);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(trimmed);
  const dotted = mapped ? mapped[1] : trimmed;
  const parts = dotted?.split('.') ?? [];
  if (parts.length !== 4 || !parts.every((part) => /^\d{1,3}$/.test(part) && Number(part) <= 255)) return undefined;
  return parts.reduce((value, part) => value * 256 + Number(part), 0);
}
