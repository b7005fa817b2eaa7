import type { Command, CommandGroup, Values } from '../command';
import { stringValue } from '../command';
import { enrollmentBody, enrollmentOptions, type EnrollmentKind } from '../enrollment-body';
import { UsageError } from '../errors';
import { EXIT_OK, type CliIo } from '../io';
import { callServiceApi } from '../service-client';
import { resolveTarget, TARGET_OPTIONS } from '../target';

/**
 * `opendps enrollment …` and `opendps group …`: create (upsert), show, list and delete through the
 * HTTPS service API, so they work against any OpenDPS the connection string opens.
 */
const KINDS = {
  individual: { group: 'enrollment', resource: 'enrollments', noun: 'individual enrollment', id: '<registration-id>' },
  group: { group: 'group', resource: 'enrollmentGroups', noun: 'enrollment group', id: '<enrollment-group-id>' },
} as const;

const PAGE_SIZE_OPTION = { type: 'string', value: 'N', help: 'items per request while listing (default: the server’s)' } as const;

export function enrollmentGroup(kind: EnrollmentKind): CommandGroup {
  const { group, noun } = KINDS[kind];
  return {
    name: group,
    summary: `Manage ${noun}s through the service API.`,
    subcommands: [createCommand(kind), showCommand(kind), listCommand(kind), deleteCommand(kind)],
  };
}

const resourcePath = (kind: EnrollmentKind, id: string): string => `/${KINDS[kind].resource}/${encodeURIComponent(id)}`;

function createCommand(kind: EnrollmentKind): Command {
  const { noun, id } = KINDS[kind];
  return {
    name: 'create',
    summary: `Create or replace an ${noun}; prints it as the service stored it.`,
    synopsis: `${id} [options]`,
    options: { ...enrollmentOptions(kind), ...TARGET_OPTIONS },
    positionals: { min: 1, max: 1 },
    async run(values, [name = ''], io) {
      const body = enrollmentBody(kind, name, values, io.cwd);
      const etag = stringValue(values, 'etag');
      const response = await callServiceApi(resolveTarget(values, io), 'PUT', resourcePath(kind, name), {
        body,
        ...(etag ? { headers: { 'if-match': etag } } : {}),
      });
      printJson(io, response.body);
      return EXIT_OK;
    },
  };
}

function showCommand(kind: EnrollmentKind): Command {
  const { noun, id } = KINDS[kind];
  return {
    name: 'show',
    summary: `Print an ${noun}.`,
    synopsis: `${id} [options]`,
    options: { ...TARGET_OPTIONS },
    positionals: { min: 1, max: 1 },
    async run(values, [name = ''], io) {
      printJson(io, (await callServiceApi(resolveTarget(values, io), 'GET', resourcePath(kind, name))).body);
      return EXIT_OK;
    },
  };
}

function listCommand(kind: EnrollmentKind): Command {
  const { noun, resource } = KINDS[kind];
  return {
    name: 'list',
    summary: `Print every ${noun} as one JSON array (follows continuation tokens).`,
    synopsis: '[options]',
    options: { 'page-size': PAGE_SIZE_OPTION, ...TARGET_OPTIONS },
    positionals: { min: 0, max: 0 },
    async run(values, _positionals, io) {
      printJson(io, await listAll(values, io, `/${resource}/query`));
      return EXIT_OK;
    },
  };
}

function deleteCommand(kind: EnrollmentKind): Command {
  const { noun, id } = KINDS[kind];
  return {
    name: 'delete',
    summary: `Delete an ${noun}.`,
    synopsis: `${id} [options]`,
    options: { etag: { type: 'string', value: 'ETAG', help: 'delete only if the current etag matches (If-Match)' }, ...TARGET_OPTIONS },
    positionals: { min: 1, max: 1 },
    async run(values, [name = ''], io) {
      const etag = stringValue(values, 'etag');
      await callServiceApi(resolveTarget(values, io), 'DELETE', resourcePath(kind, name), etag ? { headers: { 'if-match': etag } } : {});
      io.out(`Deleted ${noun} '${name}'.`);
      return EXIT_OK;
    },
  };
}

async function listAll(values: Values, io: CliIo, path: string): Promise<unknown[]> {
  const target = resolveTarget(values, io);
  const pageSize = stringValue(values, 'page-size');
  if (pageSize !== undefined && !/^[1-9]\d{0,3}$/.test(pageSize)) throw new UsageError('--page-size must be a number from 1 to 9999');
  const items: unknown[] = [];
  let continuation: string | undefined;
  do {
    const response = await callServiceApi(target, 'POST', path, {
      body: { query: '*' },
      headers: { ...(pageSize ? { 'x-ms-max-item-count': pageSize } : {}), ...(continuation ? { 'x-ms-continuation': continuation } : {}) },
    });
    if (Array.isArray(response.body)) items.push(...(response.body as unknown[]));
    const next = response.headers['x-ms-continuation'];
    continuation = typeof next === 'string' && next !== '' ? next : undefined;
  } while (continuation);
  return items;
}

function printJson(io: CliIo, value: unknown): void {
  io.out(JSON.stringify(value, null, 2));
}
