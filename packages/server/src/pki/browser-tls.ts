import type { SniCallback } from './hub-certificates';

/** The part of Node's TLS socket handle this needs; `this` of an SNICallback is the server-side TLSSocket. */
interface VerifyModeHandle {
  setVerifyMode?(requestCert: boolean, rejectUnauthorized: boolean): void;
}

/**
 * The browser host name's handshakes ask for no client certificate (docs/device-wire.md §5,
 * "Browsers"). Every other name keeps the listener's request, so X.509 devices still present
 * theirs: a CertificateRequest makes Chromium cancel a WebSocket upgrade outright when it has no
 * certificate decision cached for the host (it wants the page to pick a certificate first), while
 * the SDKs need the request. Node sets the verify mode per connection and offers no public way to
 * change it per server name; the SNI callback runs before the server's first flight, so turning the
 * request off on this socket's handle here still takes effect (TLS 1.2 and 1.3 alike). Should a
 * Node release drop that handle method, the browser host's handshakes fail loudly rather than ask
 * for a certificate (test/browser.test.ts and test/browser-host.test.ts would show it).
 */
export function withBrowserHost(inner: SniCallback, browserHost: string | undefined): SniCallback {
  if (!browserHost) return inner;
  const name = browserHost.toLowerCase();
  return function (this: unknown, servername, done) {
    if (servername.toLowerCase() === name) {
      const handle = (this as { _handle?: VerifyModeHandle } | undefined)?._handle;
      if (typeof handle?.setVerifyMode !== 'function') return done(new Error('cannot turn off the client certificate request for the browser host'));
      handle.setVerifyMode(false, false);
    }
    inner(servername, done);
  };
}
