import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import { call, type ApiResponse, type RequestOptions } from './api';
import { parseConnectionString, type Credentials } from './credentials';

/** A provisioning instance as the admin API shows it (`GET /admin/instances`). */
export interface InstanceView {
  name: string;
  idScope: string;
  serviceHostName: string;
  allocationPolicy: string;
  quotas?: Record<string, number>;
  linkedHubs: LinkedHubView[];
  /** Shown to the admin key only. */
  serviceConnectionString?: string;
}

export interface LinkedHubView {
  name: string;
  hostName: string;
  kind: 'builtin' | 'connectionString';
  connectionString?: string;
  allocationWeight?: number;
  applyAllocationPolicy?: boolean;
  location?: string;
  listening?: boolean;
}

/**
 * The signed-in console: the instance being managed, with the service credentials that manage it,
 * and the admin credentials when the admin key signed in (then every instance can be chosen).
 */
export interface Session {
  admin?: Credentials;
  service: Credentials;
  instance: InstanceView;
  instances: InstanceView[];
}

export interface SessionApi {
  session: Session;
  /** The service API of the current instance. */
  service<T>(method: string, path: string, options?: RequestOptions): Promise<ApiResponse<T>>;
  /** The admin API, with the admin key when signed in with it, else with the instance's key. */
  admin<T>(method: string, path: string, options?: RequestOptions): Promise<ApiResponse<T>>;
  /** Reads the instances again (after hubs or instances changed). */
  refresh(): Promise<void>;
  choose(instanceName: string): void;
  signOut(): void;
}

/** Dispatched on `window` when the user signs out. */
export const SIGN_OUT_EVENT = 'opendps:sign-out';

export const SessionContext = createContext<SessionApi | undefined>(undefined);

export function useSession(): SessionApi {
  const api = useContext(SessionContext);
  if (!api) throw new Error('useSession outside a signed-in console');
  return api;
}

/** Signs in: checks the credentials by reading the instances they may see. */
export async function openSession(credentials: Credentials, preferred?: string): Promise<Session> {
  const { body: instances } = await call<InstanceView[]>(credentials, 'GET', '/admin/instances');
  if (instances.length === 0) throw new Error('These credentials see no provisioning instance.');
  const instance = instances.find((candidate) => candidate.name === preferred) ?? instances[0]!;
  return { ...(credentials.kind === 'admin' ? { admin: credentials } : {}), service: serviceCredentials(credentials, instance), instance, instances };
}

export function serviceCredentials(signedIn: Credentials, instance: InstanceView): Credentials {
  if (signedIn.kind === 'service') return signedIn;
  if (!instance.serviceConnectionString) throw new Error(`Instance ${instance.name} shows no service connection string.`);
  return parseConnectionString(instance.serviceConnectionString);
}
