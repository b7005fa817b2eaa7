import { stringValue, type Command, type CommandGroup, type Values } from '../command';
import { resolveAdminTarget, ADMIN_TARGET_OPTIONS } from '../admin-target';
import { UsageError } from '../errors';
import { EXIT_OK, type CliIo } from '../io';
import { callServiceApi } from '../service-client';

/**
 * `opendps instance add|list|remove`: provisioning instances of a running server, through its admin
 * API with the deployment admin key. Every instance shares the listeners and has its own ID scope
 * and keys; the server rewrites connection.json with the new list.
 */
const instancePath = (name?: string): string => `/admin/instances${name === undefined ? '' : `/${encodeURIComponent(name)}`}`;

const addCommand: Command = {
  name: 'add',
  summary: 'Create a provisioning instance (its own ID scope and owner keys); prints it with its service connection string.',
  synopsis: '<name> [options]',
  options: {
    'id-scope': { type: 'string', value: 'SCOPE', help: "the ID scope, '0ne' + 8 uppercase hex digits (default: generated)" },
    'allocation-policy': { type: 'string', value: 'POLICY', help: 'the instance default: hashed | geoLatency | static (default hashed)' },
    'registrations-per-second': { type: 'string', value: 'N', help: 'quota of device registrations per second (default 1000)' },
    'polls-per-second': { type: 'string', value: 'N', help: 'quota of status polls per second (default 5000)' },
    ...ADMIN_TARGET_OPTIONS,
  },
  details: [
    'A new instance links no hub: add one with',
    "'opendps hub link <hub> --builtin --instance <name>' (a built-in hub name may be shared by instances).",
  ].join('\n'),
  positionals: { min: 1, max: 1 },
  async run(values, [name = ''], io) {
    const quotas = {
      ...integerOption(values, 'registrations-per-second', 'registrationsPerSecond'),
      ...integerOption(values, 'polls-per-second', 'pollsPerSecond'),
    };
    const body = {
      name,
      ...(stringValue(values, 'id-scope') ? { idScope: stringValue(values, 'id-scope') } : {}),
      ...(stringValue(values, 'allocation-policy') ? { allocationPolicy: stringValue(values, 'allocation-policy') } : {}),
      ...(Object.keys(quotas).length ? { quotas } : {}),
    };
    const response = await callServiceApi(resolveAdminTarget(values, io), 'POST', instancePath(), { body });
    printJson(io, response.body);
    return EXIT_OK;
  },
};

const listCommand: Command = {
  name: 'list',
  summary: 'List the provisioning instances with their ID scopes, hubs and quotas.',
  synopsis: '[options]',
  options: { ...ADMIN_TARGET_OPTIONS },
  positionals: { min: 0, max: 0 },
  async run(values, _positionals, io) {
    printJson(io, (await callServiceApi(resolveAdminTarget(values, io), 'GET', instancePath())).body);
    return EXIT_OK;
  },
};

const removeCommand: Command = {
  name: 'remove',
  summary: 'Remove a provisioning instance (not the last one); its hubs stop unless another instance links them.',
  synopsis: '<name> [options]',
  options: { ...ADMIN_TARGET_OPTIONS },
  details: 'Enrollments and registration records stay in the store under the removed ID scope.',
  positionals: { min: 1, max: 1 },
  async run(values, [name = ''], io) {
    await callServiceApi(resolveAdminTarget(values, io), 'DELETE', instancePath(name));
    io.out(`removed instance ${name}`);
    return EXIT_OK;
  },
};

export const instanceGroup: CommandGroup = {
  name: 'instance',
  summary: 'Add, list and remove provisioning instances of a running server.',
  subcommands: [addCommand, listCommand, removeCommand],
};

export function integerOption(values: Values, flag: string, field: string, range: [number, number] = [1, 1_000_000]): Record<string, number> {
  const raw = stringValue(values, flag);
  if (raw === undefined) return {};
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < range[0] || value > range[1]) {
    throw new UsageError(`--${flag} must be an integer from ${range[0]} to ${range[1]}; got '${raw}'`);
  }
  return { [field]: value };
}

export function printJson(io: CliIo, value: unknown): void {
  io.out(JSON.stringify(value, null, 2));
}
