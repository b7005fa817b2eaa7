import { stringValue, type Command, type CommandGroup, type OptionSpecs, type Values } from '../command';
import { resolveAdminTarget, ADMIN_TARGET_OPTIONS, type AdminTarget } from '../admin-target';
import { UsageError } from '../errors';
import { EXIT_OK } from '../io';
import { callServiceApi } from '../service-client';
import { integerOption, printJson } from './instance';

/**
 * `opendps hub link|unlink|list`: the IoT hubs an instance allocates devices to, through the admin
 * API of a running server. Changes apply to the next registration without a restart; `link`
 * returns 0 only once the hub is linked (and a built-in hub listens), and connection.json lists it.
 */
const INSTANCE: OptionSpecs = {
  instance: { type: 'string', value: 'NAME', help: 'the provisioning instance (default: the first of connection.json)' },
};

const hubPath = (instance: string, hub?: string): string =>
  `/admin/instances/${encodeURIComponent(instance)}/hubs${hub === undefined ? '' : `/${encodeURIComponent(hub)}`}`;

async function instanceOf(values: Values, target: AdminTarget): Promise<string> {
  const named = stringValue(values, 'instance');
  if (named) return named;
  const first = target.connection?.instances[0]?.name;
  if (first) return first;
  const listed = (await callServiceApi(target, 'GET', '/admin/instances')).body as Array<{ name?: string }> | undefined;
  const name = listed?.[0]?.name;
  if (!name) throw new UsageError('No instance to act on: pass --instance');
  return name;
}

const linkCommand: Command = {
  name: 'link',
  summary: 'Link a hub to an instance: a new built-in hub (listening at once) or an IoT hub by its connection string.',
  synopsis: '<name> (--builtin | --connection-string CS) [options]',
  options: {
    builtin: { type: 'boolean', help: 'run a built-in hub under this name (shared by instances linking the same name)' },
    port: { type: 'string', value: 'PORT', help: 'with --builtin: its own device MQTT/REST port over TLS (default 0: a free port)' },
    'host-name': {
      type: 'string',
      value: 'HOST',
      help: 'with --builtin: its host name; without --port it is served on the MQTT and HTTPS ports (named HOST on 8883)',
    },
    'connection-string': { type: 'string', value: 'CS', help: "an IoT hub's 'HostName=…;SharedAccessKeyName=…;SharedAccessKey=…' (RegistryWrite)" },
    weight: { type: 'string', value: 'N', help: 'allocation weight, 1-1000 (default 1)' },
    location: { type: 'string', value: 'L', help: 'the hub location, for lowest-latency allocation' },
    'no-apply-allocation-policy': { type: 'boolean', help: 'only devices whose enrollment names this hub go there' },
    ...INSTANCE,
    ...ADMIN_TARGET_OPTIONS,
  },
  details: [
    'Linking a name again replaces its settings (a built-in hub keeps its address). The hub is checked',
    'before it is linked: a connection string must reach a hub that accepts its key. At most 50 hubs',
    'per instance. Prints the linked hub: its hostName (what devices are told) and connection string.',
  ].join('\n'),
  positionals: { min: 1, max: 1 },
  async run(values, [name = ''], io) {
    const connectionString = stringValue(values, 'connection-string');
    const builtin = values.builtin === true;
    if (builtin === (connectionString !== undefined)) throw new UsageError('Give exactly one of --builtin and --connection-string');
    const hostName = stringValue(values, 'host-name');
    if (!builtin && (stringValue(values, 'port') !== undefined || hostName !== undefined)) throw new UsageError('--port and --host-name go with --builtin');
    const port = integerOption(values, 'port', 'port', [0, 65535]);
    const builtinBody = port.port === undefined && hostName === undefined ? true : { ...port, ...(hostName !== undefined ? { hostName } : {}) };
    const body = {
      ...(builtin ? { builtin: builtinBody } : { connectionString }),
      ...integerOption(values, 'weight', 'allocationWeight', [1, 1000]),
      ...(stringValue(values, 'location') ? { location: stringValue(values, 'location') } : {}),
      ...(values['no-apply-allocation-policy'] === true ? { applyAllocationPolicy: false } : {}),
    };
    const target = resolveAdminTarget(values, io);
    const response = await callServiceApi(target, 'PUT', hubPath(await instanceOf(values, target), name), { body });
    printJson(io, response.body);
    return EXIT_OK;
  },
};

const unlinkCommand: Command = {
  name: 'unlink',
  summary: 'Unlink a hub from an instance; a built-in hub no instance links any more stops listening.',
  synopsis: '<name> [options]',
  options: { ...INSTANCE, ...ADMIN_TARGET_OPTIONS },
  details: 'Enrollments without a hub list follow the new set; those naming the unlinked hub fail to register.',
  positionals: { min: 1, max: 1 },
  async run(values, [name = ''], io) {
    const target = resolveAdminTarget(values, io);
    const instance = await instanceOf(values, target);
    await callServiceApi(target, 'DELETE', hubPath(instance, name));
    io.out(`unlinked hub ${name} from instance ${instance}`);
    return EXIT_OK;
  },
};

const listCommand: Command = {
  name: 'list',
  summary: "List an instance's linked hubs (host names, weights, connection strings).",
  synopsis: '[options]',
  options: { ...INSTANCE, ...ADMIN_TARGET_OPTIONS },
  positionals: { min: 0, max: 0 },
  async run(values, _positionals, io) {
    const target = resolveAdminTarget(values, io);
    printJson(io, (await callServiceApi(target, 'GET', hubPath(await instanceOf(values, target)))).body);
    return EXIT_OK;
  },
};

export const hubGroup: CommandGroup = {
  name: 'hub',
  summary: 'Link, unlink and list the IoT hubs of an instance of a running server.',
  subcommands: [linkCommand, unlinkCommand, listCommand],
};
