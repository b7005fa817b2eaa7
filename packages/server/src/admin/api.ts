import type { IncomingMessage, ServerResponse } from 'node:http';
import { AzureIotHubConnector } from '@opendps/hub';
import {
  Errors,
  assertRegistrationId,
  generateIdScope,
  isDpsError,
  ownerPolicy,
  serviceConnectionString,
  OWNER_POLICY,
  type LinkedHub,
  type Logger,
  type ProvisioningInstance,
  type SharedAccessPolicy,
} from '@opendps/model';
import { effectiveQuotas, registrationTraces } from '@opendps/registration';
import type { Store } from '@opendps/store';
import type { HubManager, SyncResult } from '../hubs';
import type { Route } from '../https';
import { instanceCollection, type InstanceRegistry } from '../instances';
import { authenticateAdmin, type AdminCaller } from './auth';
import { handleHubDevices } from './hub-devices';
import { readBody, sendJson } from './body';
import { assertName, MAX_LINKED_HUBS, parseHubLink, parseInstanceCreation, parseInstanceUpdate, type HubLink } from './validate';

export interface AdminApiOptions {
  store: Store;
  /** `--host`: the admin connection string's HostName (the SAS resource). */
  host: string;
  adminPolicy: SharedAccessPolicy;
  registry: InstanceRegistry;
  hubs: HubManager;
  /**
   * After a change is stored: refresh the snapshot, sync the hubs (a new built-in hub listens
   * before this resolves), publish host names, rewrite connection.json.
   */
  apply(): Promise<SyncResult>;
  /** Trust for probing a hub connection string before linking it (the development CA). */
  ca?: string;
  logger: Logger;
}

/** The prefix the admin API claims on the HTTPS listener. */
export const ADMIN_PREFIX = '/admin';

/**
 * The control-plane API on the HTTPS listener, under `/admin/…` (no clash: the service API claims
 * `/enrollments`, `/enrollmentGroups`, `/registrations`, `/certificates`; devices `/{idScope}/…`,
 * and an ID scope is never `admin`). Authorization (service SAS, docs/service-rest.md §8):
 *
 * - the deployment admin key (`opendpsadmin`, `adminConnectionString` in connection.json) may do
 *   everything: list, create, update and remove instances, and manage any instance's hubs;
 * - an instance policy with ServiceConfig may read its own instance and manage its own hubs; any
 *   other instance is 404 to it (as if it did not exist), and creating or removing instances is 401.
 *
 * | method | path | body | answer |
 * |---|---|---|---|
 * | GET | /admin/instances | | 200 `[instance]` (an instance key sees its own) |
 * | POST | /admin/instances | `{name, idScope?, allocationPolicy?, quotas?}` | 201 instance with `serviceConnectionString` |
 * | GET | /admin/instances/{name} | | 200 instance |
 * | PATCH | /admin/instances/{name} | `{allocationPolicy?, quotas?}` (admin) | 200 instance |
 * | DELETE | /admin/instances/{name} | | 204 (the last instance cannot be removed: 409) |
 * | GET | /admin/instances/{name}/hubs[/{hub}] | | 200 `[hub]` / hub |
 * | PUT | /admin/instances/{name}/hubs/{hub} | `{builtin \| connectionString, allocationWeight?, applyAllocationPolicy?, location?}` | 201 created / 200 replaced, once listening |
 * | DELETE | /admin/instances/{name}/hubs/{hub} | | 204 |
 * | GET | /admin/instances/{name}/registrations/{id}/trace | | 200 the last outcome's trace (docs/observability.md "Registration traces") |
 * | DELETE | /admin/instances/{name}/registrations/{id}/trace | | 204 |
 * | GET, PATCH | /admin/instances/{name}/hubs/{hub}/devices[/{id}/twin] | | a built-in hub's devices and twins (./hub-devices.ts) |
 */
export function createAdminApi(options: AdminApiOptions): Route {
  const collection = instanceCollection(options.store);
  const log = options.logger.child({ category: 'ServiceOperations' });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const pathname = new URL(req.url ?? '/', 'https://admin.invalid').pathname;
    const segments = pathname.split('/').filter(Boolean).map(decode);
    const traced = segments[3]?.toLowerCase() === 'registrations';
    const hubDevices = segments[3]?.toLowerCase() === 'hubs' && segments[5]?.toLowerCase() === 'devices';
    if (segments[0]?.toLowerCase() !== 'admin' || segments[1]?.toLowerCase() !== 'instances' || segments.length > (traced ? 6 : hubDevices ? 8 : 5)) throw Errors.notFound();
    const caller = authenticateAdmin(header(req.headers.authorization), {
      host: options.host,
      adminPolicy: options.adminPolicy,
      instances: options.registry.instances(),
      pathname,
    });
    const [, , rawName, sub, rawHub] = segments;
    if (rawName === undefined) {
      if (method === 'GET') return sendJson(res, 200, listInstances(caller));
      if (method === 'POST') return sendJson(res, 201, await createInstance(caller, await readBody(req)));
      throw Errors.methodNotAllowed(`${method} is not allowed on /admin/instances; use GET or POST.`);
    }
    const name = assertName(rawName, 'instance');
    if (sub === undefined) {
      if (method === 'GET') return sendJson(res, 200, view(await readable(caller, name), caller.kind === 'admin'));
      if (method === 'PATCH') return sendJson(res, 200, await updateInstance(caller, name, await readBody(req)));
      if (method === 'DELETE') {
        await removeInstance(caller, name);
        return sendJson(res, 204);
      }
      throw Errors.methodNotAllowed(`${method} is not allowed on an instance; use GET, PATCH or DELETE.`);
    }
    if (traced) return registrationTrace(req, res, caller, name, segments[4], segments[5]);
    if (sub.toLowerCase() !== 'hubs') throw Errors.notFound();
    if (rawHub === undefined) {
      if (method !== 'GET') throw Errors.methodNotAllowed(`${method} is not allowed on the hub list; use GET.`);
      return sendJson(res, 200, (await readable(caller, name)).linkedHubs.map(hubView));
    }
    const hubName = assertName(rawHub, 'hub');
    if (hubDevices) {
      const hub = findHub(await readable(caller, name), hubName);
      if (!hub) throw Errors.hubNotFound(`Instance '${name}' links no hub '${hubName}'.`);
      return handleHubDevices(req, res, hub, options.hubs.hubs.get(hub.name.toLowerCase()), segments.slice(6));
    }
    if (method === 'GET') {
      const hub = findHub(await readable(caller, name), hubName);
      if (!hub) throw Errors.hubNotFound(`Instance '${name}' links no hub '${hubName}'.`);
      return sendJson(res, 200, hubView(hub));
    }
    if (method === 'PUT') {
      const { created, hub } = await linkHub(caller, name, hubName, parseHubLink(await readBody(req)));
      return sendJson(res, created ? 201 : 200, hubView(hub));
    }
    if (method === 'DELETE') {
      await unlinkHub(caller, name, hubName);
      return sendJson(res, 204);
    }
    throw Errors.methodNotAllowed(`${method} is not allowed on a linked hub; use GET, PUT or DELETE.`);
  }

  /** The trace of a registration id's last outcome: why it was refused, or how it was assigned. */
  async function registrationTrace(
    req: IncomingMessage,
    res: ServerResponse,
    caller: AdminCaller,
    name: string,
    registrationId: string | undefined,
    leaf: string | undefined,
  ): Promise<void> {
    if (registrationId === undefined || leaf?.toLowerCase() !== 'trace') throw Errors.notFound();
    const instance = await readable(caller, name);
    assertRegistrationId(registrationId);
    const traces = registrationTraces(options.store, instance.idScope);
    const method = req.method ?? 'GET';
    if (method === 'GET') {
      const trace = await traces.get(registrationId.toLowerCase());
      if (!trace) throw Errors.registrationNotFound(`No trace is kept for registration '${registrationId}' (none yet, or it expired).`);
      return sendJson(res, 200, trace.value);
    }
    if (method === 'DELETE') {
      if (!(await traces.delete(registrationId.toLowerCase()))) throw Errors.registrationNotFound(`No trace is kept for registration '${registrationId}'.`);
      return sendJson(res, 204);
    }
    throw Errors.methodNotAllowed(`${method} is not allowed on a registration trace; use GET or DELETE.`);
  }

  function listInstances(caller: AdminCaller): unknown[] {
    const instances = options.registry.instances();
    return caller.kind === 'admin'
      ? instances.map((instance) => view(instance, true))
      : instances.filter((instance) => same(instance.name, caller.instance.name)).map((instance) => view(instance, false));
  }

  /** The instance as the caller may see it; another instance's key gets 404, as if it did not exist. */
  async function readable(caller: AdminCaller, name: string): Promise<ProvisioningInstance> {
    if (caller.kind === 'instance' && !same(caller.instance.name, name)) throw Errors.instanceNotFound();
    const stored = await collection.get(name);
    if (!stored) throw Errors.instanceNotFound(`No provisioning instance '${name}'.`);
    return stored.value;
  }

  function requireAdmin(caller: AdminCaller, what: string): void {
    if (caller.kind !== 'admin') throw Errors.insufficientRights(`Only the deployment admin key (${options.adminPolicy.keyName}) may ${what}.`);
  }

  async function createInstance(caller: AdminCaller, body: unknown): Promise<unknown> {
    requireAdmin(caller, 'create instances');
    const creation = parseInstanceCreation(body);
    const known = await options.registry.refresh();
    if (creation.idScope && known.some((instance) => same(instance.idScope, creation.idScope ?? ''))) {
      throw Errors.conflict(`The ID scope ${creation.idScope} is already used by another instance.`);
    }
    let idScope = creation.idScope ?? generateIdScope();
    while (!creation.idScope && known.some((instance) => same(instance.idScope, idScope))) idScope = generateIdScope();
    const instance: ProvisioningInstance = {
      name: creation.name,
      idScope,
      serviceHostName: options.host,
      policies: [ownerPolicy()],
      linkedHubs: [],
      allocationPolicy: creation.allocationPolicy ?? 'hashed',
      ...(creation.quotas ? { quotas: creation.quotas } : {}),
    };
    try {
      await collection.put(instance.name, instance, { ifNoneMatch: '*' });
    } catch (error) {
      if (isDpsError(error) && error.status === 409) throw Errors.conflict(`An instance named '${instance.name}' already exists.`);
      throw error;
    }
    log.info({ instance: instance.name, idScope: instance.idScope }, 'created provisioning instance');
    await options.apply();
    return view(instance, true);
  }

  async function updateInstance(caller: AdminCaller, name: string, body: unknown): Promise<unknown> {
    requireAdmin(caller, 'change an instance');
    const update = parseInstanceUpdate(body);
    const updated = await modify(name, (instance) => {
      const next: ProvisioningInstance = { ...instance, ...(update.allocationPolicy ? { allocationPolicy: update.allocationPolicy } : {}) };
      if (update.quotas === null) delete next.quotas;
      else if (update.quotas) next.quotas = update.quotas;
      return next;
    });
    await options.apply();
    return view(updated, true);
  }

  async function removeInstance(caller: AdminCaller, name: string): Promise<void> {
    requireAdmin(caller, 'remove instances');
    const known = await options.registry.refresh();
    if (!known.some((instance) => same(instance.name, name))) throw Errors.instanceNotFound(`No provisioning instance '${name}'.`);
    if (known.length <= 1) throw Errors.conflict('The last provisioning instance cannot be removed.');
    if (!(await collection.delete(name))) throw Errors.instanceNotFound(`No provisioning instance '${name}'.`);
    log.info({ instance: name }, 'removed provisioning instance');
    await options.apply();
  }

  async function linkHub(caller: AdminCaller, name: string, hubName: string, link: HubLink): Promise<{ created: boolean; hub: LinkedHub }> {
    await readable(caller, name);
    if (link.connectionString) await probe(hubName, link.connectionString);
    let created = false;
    await modify(name, (instance) => {
      const index = instance.linkedHubs.findIndex((hub) => same(hub.name, hubName));
      created = index === -1;
      if (created && instance.linkedHubs.length >= MAX_LINKED_HUBS) {
        throw Errors.invalidField(`An instance links at most ${MAX_LINKED_HUBS} hubs.`);
      }
      const previous = instance.linkedHubs[index];
      // A replaced link keeps its name as first spelled (a built-in hub's registry is stored under it).
      const hub = toLinkedHub(previous?.name ?? hubName, link, previous);
      const linkedHubs = created ? [...instance.linkedHubs, hub] : instance.linkedHubs.map((existing, i) => (i === index ? hub : existing));
      return { ...instance, linkedHubs };
    });
    const result = await options.apply();
    const failure = result.failed.find((failed) => same(failed.name, hubName));
    if (failure) {
      // Not listening: take the link back so devices are never sent to a hub that is not there.
      if (created) await modify(name, (instance) => ({ ...instance, linkedHubs: instance.linkedHubs.filter((hub) => !same(hub.name, hubName)) }));
      await options.apply();
      throw Errors.hubUnavailable(`The hub '${hubName}' could not be started: ${failure.error.message}`);
    }
    const hub = findHub(await readable(caller, name), hubName);
    if (!hub) throw Errors.hubNotFound(`The hub '${hubName}' was unlinked meanwhile.`);
    log.info({ instance: name, hub: hubName, hostName: hub.hostName, created }, 'linked hub');
    return { created, hub };
  }

  async function unlinkHub(caller: AdminCaller, name: string, hubName: string): Promise<void> {
    await readable(caller, name);
    await modify(name, (instance) => {
      if (!findHub(instance, hubName)) throw Errors.hubNotFound(`Instance '${name}' links no hub '${hubName}'.`);
      return { ...instance, linkedHubs: instance.linkedHubs.filter((hub) => !same(hub.name, hubName)) };
    });
    await options.apply();
    log.info({ instance: name, hub: hubName }, 'unlinked hub');
  }

  /** A connection string must reach a hub that accepts its key: read a device that does not exist (404). */
  async function probe(hubName: string, connectionString: string): Promise<void> {
    const connector = new AzureIotHubConnector(connectionString, { ...(options.ca ? { ca: options.ca } : {}), timeoutMs: 10_000 });
    try {
      await connector.getDevice(`opendps-link-check-${hubName}`.slice(0, 128));
    } catch (error) {
      const reason = isDpsError(error) ? error.message : String(error);
      throw Errors.hubUnavailable(`The hub '${hubName}' did not accept its connection string: ${reason}`);
    } finally {
      connector.close();
    }
  }

  /** Read-modify-write of one stored instance under its etag, retried when another writer wins. */
  async function modify(name: string, change: (instance: ProvisioningInstance) => ProvisioningInstance): Promise<ProvisioningInstance> {
    for (let attempt = 0; attempt < 8; attempt++) {
      const stored = await collection.get(name);
      if (!stored) throw Errors.instanceNotFound(`No provisioning instance '${name}'.`);
      const next = change(stored.value);
      try {
        await collection.put(stored.value.name, next, { ifMatch: stored.etag });
        return next;
      } catch (error) {
        if (!(isDpsError(error) && error.status === 412)) throw error;
      }
    }
    throw Errors.conflict(`The instance '${name}' kept changing; try again.`);
  }

  function view(instance: ProvisioningInstance, withKeys: boolean): Record<string, unknown> {
    const owner = instance.policies.find((policy) => policy.keyName === OWNER_POLICY) ?? instance.policies[0];
    return {
      name: instance.name,
      idScope: instance.idScope,
      serviceHostName: instance.serviceHostName,
      allocationPolicy: instance.allocationPolicy,
      quotas: effectiveQuotas(instance.quotas),
      linkedHubs: instance.linkedHubs.map(hubView),
      ...(withKeys && owner ? { serviceConnectionString: serviceConnectionString(instance, owner.keyName) } : {}),
    };
  }

  function hubView(hub: LinkedHub): Record<string, unknown> {
    const builtIn = hub.builtin ? options.hubs.hubs.get(hub.name.toLowerCase()) : undefined;
    return {
      name: hub.name,
      // A built-in hub listens on every node, each on its own port: show the one this node serves.
      hostName: builtIn?.hostName ?? hub.hostName,
      kind: hub.connectionString ? 'connectionString' : 'builtin',
      ...(hub.builtin ? { builtin: { ...hub.builtin }, listening: builtIn !== undefined } : {}),
      connectionString: hub.connectionString ?? builtIn?.connectionString,
      allocationWeight: hub.allocationWeight,
      applyAllocationPolicy: hub.applyAllocationPolicy,
      ...(hub.location ? { location: hub.location } : {}),
    };
  }

  return {
    matches: (pathname) => /^\/admin(?:\/|$)/i.test(pathname),
    handle,
  };
}

function toLinkedHub(name: string, link: HubLink, previous: LinkedHub | undefined): LinkedHub {
  let hostName = '';
  if (link.connectionString) {
    hostName = /(?:^|;)\s*HostName=([^;]+)/i.exec(link.connectionString)?.[1]?.trim() ?? '';
  } else if (link.builtin) {
    // A built-in hub keeps its published host:port; a new one gets it once it listens (publishHostNames).
    hostName = previous?.builtin && previous.hostName ? previous.hostName : '';
  }
  const hub: LinkedHub = { name, hostName, allocationWeight: link.allocationWeight, applyAllocationPolicy: link.applyAllocationPolicy };
  if (link.builtin) hub.builtin = { ...link.builtin };
  if (link.connectionString) hub.connectionString = link.connectionString;
  if (link.location) hub.location = link.location;
  return hub;
}

function findHub(instance: ProvisioningInstance, name: string): LinkedHub | undefined {
  return instance.linkedHubs.find((hub) => same(hub.name, name));
}

function same(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw Errors.invalidField('A path segment is not URL-encoded correctly.');
  }
}
