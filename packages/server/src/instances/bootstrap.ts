import {
  generateIdScope,
  isDpsError,
  ownerPolicy,
  type LinkedHub,
  type Logger,
  type ProvisioningInstance,
} from '@opendps/model';
import type { Collection, Store } from '@opendps/store';
import type { InstanceDeclaration, ServerConfig } from '../config';
import { toLinkedHub } from './linked-hubs';

/** Where instances live: shared by every node that uses the same store. */
export function instanceCollection(store: Store): Collection<ProvisioningInstance> {
  return store.collection<ProvisioningInstance>('global', 'instances');
}

export const DEFAULT_INSTANCE: InstanceDeclaration = { name: 'default' };
/** The built-in hub an instance gets when the configuration names none; it listens on `--hub-port`. */
export const DEFAULT_HUB = 'hub-1';

/**
 * Makes sure the configured instances exist and returns them. A stored instance keeps its ID scope
 * and policy keys across restarts; what the config file declares (ID scope, policy, hubs) and the
 * current host are applied on top. Without declarations: every stored instance, or a new `default`.
 * Several nodes may start at once on one Redis: creation is create-if-absent, and the loser reads
 * the winner's instance.
 */
export async function bootstrapInstances(store: Store, config: ServerConfig, logger: Logger): Promise<ProvisioningInstance[]> {
  const collection = instanceCollection(store);
  if (!config.instances) {
    const stored = await listAll(collection);
    if (stored.length) return Promise.all(stored.map((instance) => reconcile(collection, instance, undefined, config, logger)));
  }
  const declarations = config.instances ?? [DEFAULT_INSTANCE];
  const instances: ProvisioningInstance[] = [];
  for (const declaration of declarations) {
    const existing = (await collection.get(declaration.name))?.value ?? (await create(collection, declaration, config, logger));
    instances.push(await reconcile(collection, existing, declaration, config, logger));
  }
  return instances;
}

async function create(
  collection: Collection<ProvisioningInstance>,
  declaration: InstanceDeclaration,
  config: ServerConfig,
  logger: Logger,
): Promise<ProvisioningInstance> {
  const instance: ProvisioningInstance = {
    name: declaration.name,
    idScope: declaration.idScope ?? generateIdScope(),
    serviceHostName: config.host,
    policies: [ownerPolicy()],
    linkedHubs: (declaration.linkedHubs ?? [{ name: DEFAULT_HUB, builtin: defaultHubBuiltin(config) }]).map((hub) => toLinkedHub(hub, config.host)),
    allocationPolicy: declaration.allocationPolicy ?? 'hashed',
  };
  try {
    await collection.put(instance.name, instance, { ifNoneMatch: '*' });
    logger.info({ instance: instance.name, idScope: instance.idScope }, 'created provisioning instance');
    return instance;
  } catch (error) {
    // Another node created it first: use theirs.
    const winner = isDpsError(error) && error.status === 409 ? await collection.get(instance.name) : undefined;
    if (!winner) throw error;
    return winner.value;
  }
}

/** Applies the declaration and host to a stored instance, writing only when something changed. */
async function reconcile(
  collection: Collection<ProvisioningInstance>,
  stored: ProvisioningInstance,
  declaration: InstanceDeclaration | undefined,
  config: ServerConfig,
  logger: Logger,
): Promise<ProvisioningInstance> {
  const wanted: ProvisioningInstance = {
    ...stored,
    serviceHostName: config.host,
    ...(declaration?.idScope ? { idScope: declaration.idScope } : {}),
    ...(declaration?.allocationPolicy ? { allocationPolicy: declaration.allocationPolicy } : {}),
    linkedHubs: declaration?.linkedHubs
      ? declaration.linkedHubs.map((hub) => toLinkedHub(hub, config.host))
      : stored.linkedHubs.map((hub) => followHubPort(hub, config)),
  };
  if (JSON.stringify(wanted) === JSON.stringify(stored)) return stored;
  await collection.put(wanted.name, wanted);
  logger.info({ instance: wanted.name, idScope: wanted.idScope }, 'updated provisioning instance from the configuration');
  return wanted;
}

/**
 * The default built-in hub follows `--hub-port` and `--host` of this start: its own port when
 * `--hub-port` is given, else the device listeners under `--host`.
 */
function followHubPort(hub: LinkedHub, config: ServerConfig): LinkedHub {
  if (hub.name !== DEFAULT_HUB || !hub.builtin) return hub;
  const builtin = defaultHubBuiltin(config);
  if (hub.builtin.port === builtin.port && hub.builtin.hostName === builtin.hostName) return hub;
  return { ...hub, hostName: toLinkedHub({ name: hub.name, builtin }, config.host).hostName, builtin };
}

function defaultHubBuiltin(config: ServerConfig): { port?: number; hostName?: string } {
  return config.ports.hub !== undefined ? { port: config.ports.hub } : { hostName: config.host };
}

export async function listAll(collection: Collection<ProvisioningInstance>): Promise<ProvisioningInstance[]> {
  const instances: ProvisioningInstance[] = [];
  let continuation: string | undefined;
  do {
    const page = await collection.list({ pageSize: 1000, ...(continuation ? { continuation } : {}) });
    instances.push(...page.items.map((item) => item.value));
    continuation = page.continuation;
  } while (continuation);
  return instances;
}
