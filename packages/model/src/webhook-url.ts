import { isIP } from 'node:net';
import { Errors } from './errors';

/**
 * Which custom allocation webhooks may be called. A webhook URL comes from whoever may write
 * enrollments, and the call comes from the server's network position: left open, it is a request
 * forgery against the host (cloud metadata services, link-local neighbours).
 */
export interface WebhookUrlPolicy {
  /** `http://` to a loopback address (local development). Default false: `https://` only. */
  allowHttp?: boolean;
  /** Link-local (169.254.0.0/16, fe80::/10) and cloud metadata addresses. Default false. */
  allowLinkLocal?: boolean;
}

/** Cloud metadata endpoints outside the link-local ranges, and the names that reach them. */
const METADATA_ADDRESSES = new Set(['fd00:ec2::254', '100.100.100.200']);
const METADATA_NAMES = new Set(['metadata.google.internal']);

/**
 * The URL rule, checked when an enrollment is written and again before each call: `https://`, or
 * `http://` to a loopback host when allowed; never a link-local or metadata host unless allowed.
 * The address a name resolves to is checked at call time (see `webhookAddressRefusal`).
 */
export function checkWebhookUrl(webhookUrl: string, policy: WebhookUrlPolicy = {}): URL {
  let url: URL;
  try {
    url = new URL(webhookUrl);
  } catch {
    throw Errors.invalidAllocation('The custom allocation webhookUrl is not a URL.');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw Errors.invalidAllocation(`The custom allocation webhookUrl must be https://, not '${url.protocol}'.`);
  }
  const host = bareHost(url.hostname);
  if (url.protocol === 'http:') {
    if (!policy.allowHttp) {
      throw Errors.invalidAllocation('A custom allocation webhook must be https://; http:// to loopback is not enabled on this server.');
    }
    if (!isLoopbackHost(host)) {
      throw Errors.invalidAllocation(`A custom allocation webhook over http:// must be on a loopback address, not '${host}'; use https://.`);
    }
  }
  const refusal = METADATA_NAMES.has(host.replace(/\.$/, '')) ? 'a cloud metadata host' : isIP(host) ? webhookAddressRefusal(host, policy) : undefined;
  if (refusal && !policy.allowLinkLocal) {
    throw Errors.invalidAllocation(`The custom allocation webhook '${host}' is ${refusal}; such webhooks are not enabled on this server.`);
  }
  return url;
}

/** Why a webhook may not be called at this IP address, or undefined when it may. */
export function webhookAddressRefusal(address: string, policy: WebhookUrlPolicy = {}): string | undefined {
  if (policy.allowLinkLocal) return undefined;
  const ip = unmapped(bareHost(address));
  if (METADATA_ADDRESSES.has(ip)) return 'a cloud metadata address';
  if (isIP(ip) === 4) return ip.startsWith('169.254.') ? 'a link-local address' : undefined;
  if (isIP(ip) === 6 && /^fe[89ab][0-9a-f]:/.test(ip)) return 'a link-local address';
  return undefined;
}

/** localhost (and `*.localhost`), 127.0.0.0/8, ::1, and those as IPv4-mapped IPv6. */
export function isLoopbackHost(hostname: string): boolean {
  const host = unmapped(bareHost(hostname));
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || host === '0:0:0:0:0:0:0:1';
}

function bareHost(hostname: string): string {
  return hostname.replace(/^\[|\]$/g, '').toLowerCase();
}

/** `::ffff:a.b.c.d` and its hex form `::ffff:7f00:1` as the IPv4 address. */
function unmapped(ip: string): string {
  const dotted = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(ip);
  if (dotted?.[1]) return dotted[1];
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(ip);
  if (!hex?.[1] || !hex[2]) return ip;
  const high = parseInt(hex[1], 16);
  const low = parseInt(hex[2], 16);
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
}
