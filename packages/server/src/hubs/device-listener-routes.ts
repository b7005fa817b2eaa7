import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { ConnectRouter } from '@opendps/mqtt';
import type { Route } from '../https';
import type { HubManager } from './hub-manager';

/**
 * Built-in hubs served on the device listeners (docs/architecture.md "Hub addresses"). A hub
 * device's MQTT CONNECT names its hub first in the username (`{hubHost}/{deviceId}/?api-version=…`)
 * where a DPS device names its ID scope (`{idScope}/registrations/…`), so the MQTT listener (and
 * MQTT over `/$iothub/websocket`) hands a connection to the hub whose host name it starts with.
 */
export function hubConnectRouter(hubs: HubManager): ConnectRouter {
  return (connect) => {
    const first = connect.username?.split('/', 1)[0];
    const hub = first ? hubs.onDeviceListeners(first) : undefined;
    if (!hub) return undefined;
    return (stream, context) => hub.accept(stream, { ...(context.clientCertificateChain?.[0] ? { certificate: context.clientCertificateChain[0] } : {}) });
  };
}

/**
 * The hubs' service REST API on the HTTPS listener: `/devices…` and `/twins/…` (paths neither the
 * DPS device API, `/{idScope}/registrations/…`, nor the service and admin APIs use) addressed by
 * Host header, else by TLS SNI, to a hub on the device listeners. Mounted before the other routes.
 */
export function hubRestRoute(hubs: HubManager): Route {
  const hubOf = (req: IncomingMessage) => {
    const host = req.headers.host ?? (req.socket as Partial<TLSSocket>).servername;
    return typeof host === 'string' && host !== '' ? hubs.onDeviceListeners(host) : undefined;
  };
  return {
    matches: (pathname, req) => HUB_PATH.test(pathname) && req !== undefined && hubOf(req) !== undefined,
    handle: (req, res) => {
      const hub = hubOf(req);
      if (hub) hub.handleRest(req, res);
      return Promise.resolve();
    },
  };
}

/** `/devices`, `/devices/…`, `/twins/…` (case-insensitive, as the hub's own router). */
const HUB_PATH = /^\/(?:devices(?:\/|$)|twins\/)/i;
