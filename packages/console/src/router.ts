import { useEffect, useMemo, useState } from 'preact/hooks';

/**
 * Hash routes (`#/enrollments?q=…`), so that every page is one URL the server answers with the same
 * index.html, and a link to a page (the device fleet with an enrollment's parameters) can be shared.
 */
export interface Route {
  /** The path after `#`, e.g. `/enrollments/dev-1`. */
  path: string;
  params: URLSearchParams;
}

function routeOf(locationHash: string): Route {
  const hash = locationHash.replace(/^#/, '') || '/';
  const at = hash.indexOf('?');
  return at < 0 ? { path: hash, params: new URLSearchParams() } : { path: hash.slice(0, at), params: new URLSearchParams(hash.slice(at + 1)) };
}

export function useRoute(): Route {
  const [hash, setHash] = useState(() => location.hash);
  useEffect(() => {
    const onChange = () => setHash(location.hash);
    addEventListener('hashchange', onChange);
    // Effects run after the first paint: a hash that changed since this component rendered would
    // otherwise never be seen by it (a page opened by a link, then left at once).
    onChange();
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return useMemo(() => routeOf(hash), [hash]);
}

export function href(path: string, params?: Record<string, string | number | undefined>): string {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params ?? {})) if (value !== undefined && value !== '') query.set(name, String(value));
  const search = query.toString();
  return `#${path}${search ? `?${search}` : ''}`;
}

export function navigate(path: string, params?: Record<string, string | number | undefined>): void {
  location.hash = href(path, params).slice(1);
}
