import type { ComponentType } from 'preact';
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { call } from './api';
import { remember, remembered, type Credentials } from './credentials';
import { CertificatesPage } from './pages/certificates';
import { EnrollmentsPage } from './pages/enrollments';
import { GroupsPage } from './pages/groups';
import { HubDevicesPage } from './pages/hub-devices';
import { HubsPage } from './pages/hubs';
import { InstancesPage } from './pages/instances';
import { LivePage } from './pages/live';
import { RegistrationsPage } from './pages/registrations';
import { SignIn } from './pages/sign-in';
import { href, useRoute } from './router';
import { openSession, serviceCredentials, SessionContext, SIGN_OUT_EVENT, type Session, type SessionApi } from './session';
import { ThemeToggle } from './theme';

interface PageEntry {
  path: string;
  title: string;
  /** Loaded with the console… */
  page?: ComponentType;
  /** …or on first visit (the device fleet carries the protocol clients: a chunk of its own). */
  load?: () => Promise<ComponentType>;
  adminOnly?: boolean;
}

/** The pages, in the order the navigation lists them. */
const PAGES: PageEntry[] = [
  { path: '/enrollments', title: 'Enrollments', page: EnrollmentsPage },
  { path: '/groups', title: 'Groups', page: GroupsPage },
  { path: '/registrations', title: 'Registrations', page: RegistrationsPage },
  { path: '/certificates', title: 'Certificates', page: CertificatesPage },
  { path: '/hubs', title: 'Hubs', page: HubsPage },
  { path: '/devices', title: 'Hub devices', page: HubDevicesPage },
  { path: '/fleet', title: 'Device fleet', load: () => import('./fleet/page').then((module) => module.FleetPage) },
  { path: '/live', title: 'Live', page: LivePage },
  { path: '/instances', title: 'Instances', page: InstancesPage, adminOnly: true },
];

export function App() {
  const [session, setSession] = useState<Session>();
  const [restoring, setRestoring] = useState(() => remembered() !== undefined);

  const signIn = useCallback(async (credentials: Credentials, keep: boolean) => {
    const opened = await openSession(credentials);
    remember(keep ? credentials : undefined);
    setSession(opened);
  }, []);

  useEffect(() => {
    const saved = remembered();
    if (!saved) return;
    openSession(saved)
      .then(setSession, () => remember(undefined))
      .finally(() => setRestoring(false));
  }, []);

  if (restoring) return <p class="loading">Signing in…</p>;
  if (!session) return <SignIn onSignIn={signIn} />;
  return <Console session={session} setSession={setSession} />;
}

function Console({ session, setSession }: { session: Session; setSession: (next: Session | undefined) => void }) {
  const route = useRoute();
  const api = useMemo<SessionApi>(() => {
    const signedIn = session.admin ?? session.service;
    return {
      session,
      service: (method, path, options) => call(session.service, method, path, options),
      admin: (method, path, options) => call(signedIn, method, path, options),
      refresh: async () => setSession(await openSession(signedIn, session.instance.name)),
      choose: (name) => {
        const instance = session.instances.find((candidate) => candidate.name === name);
        if (instance) setSession({ ...session, instance, service: serviceCredentials(signedIn, instance) });
      },
      signOut: () => {
        remember(undefined);
        // Pages that keep work running past their own visit (the device fleet) end it here.
        dispatchEvent(new Event(SIGN_OUT_EVENT));
        setSession(undefined);
      },
    };
  }, [session, setSession]);

  const pages = PAGES.filter((entry) => !entry.adminOnly || session.admin);
  const entry = pages.find((candidate) => route.path === candidate.path || route.path.startsWith(`${candidate.path}/`)) ?? pages[0]!;
  // After navigating, focus moves to the page (keyboard and screen-reader users start there, not in the menu).
  const shown = useRef(entry.path);
  useEffect(() => {
    if (shown.current === entry.path) return;
    shown.current = entry.path;
    document.getElementById('main')?.focus();
  }, [entry.path]);

  return (
    <SessionContext.Provider value={api}>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href={href('/enrollments')}>
          OpenDPS
        </a>
        {session.instances.length > 1 ? (
          <label class="instance">
            <span class="visually-hidden">Instance</span>
            <select value={session.instance.name} onChange={(event) => api.choose((event.target as HTMLSelectElement).value)}>
              {session.instances.map((instance) => (
                <option key={instance.name} value={instance.name}>
                  {instance.name}
                </option>
              ))}
            </select>
          </label>
        ) : (
          <span class="instance">{session.instance.name}</span>
        )}
        <span class="scope" title="ID scope">
          {session.instance.idScope}
        </span>
        <ThemeToggle />
        <button type="button" class="link" onClick={api.signOut}>
          Sign out
        </button>
      </header>
      <nav class="side" aria-label="Sections">
        <ul>
          {pages.map((candidate) => (
            <li key={candidate.path}>
              <a href={href(candidate.path)} aria-current={candidate === entry ? 'page' : undefined}>
                {candidate.title}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main" tabIndex={-1} key={session.instance.name}>
        <Page entry={entry} />
      </main>
    </SessionContext.Provider>
  );
}

const loaded = new Map<string, ComponentType>();

function Page({ entry }: { entry: PageEntry }) {
  const [, setLoads] = useState(0);
  const Component = entry.page ?? loaded.get(entry.path);
  useEffect(() => {
    if (Component || !entry.load) return;
    void entry.load().then((component) => {
      loaded.set(entry.path, component);
      setLoads((n) => n + 1);
    });
  }, [entry, Component]);
  useEffect(() => {
    document.title = `${entry.title} · OpenDPS`;
  }, [entry]);
  return Component ? <Component /> : <p class="loading">Loading…</p>;
}
