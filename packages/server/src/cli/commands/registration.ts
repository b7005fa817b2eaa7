import { stringValue, type Command, type CommandGroup } from '../command';
import { CliFailure } from '../errors';
import { EXIT_OK } from '../io';
import { callServiceApi, ServiceApiError } from '../service-client';
import { resolveTarget, TARGET_OPTIONS, type ServiceTarget } from '../target';
import { printJson } from './instance';

/**
 * `opendps registration show|delete`: a device's registration record (the service API) and the
 * trace of its last outcome (the admin API, which an instance key may read for its own instance):
 * why it was refused, or which hub it got and why (docs/observability.md "Registration traces").
 */
const registrationPath = (id: string): string => `/registrations/${encodeURIComponent(id)}`;
const tracePath = (instance: string, id: string): string =>
  `/admin/instances/${encodeURIComponent(instance)}/registrations/${encodeURIComponent(id)}/trace`;

/** The instance the target's key belongs to: named, or the one the admin API shows that key. */
async function instanceOf(target: ServiceTarget, named: string | undefined): Promise<string> {
  if (named) return named;
  const listed = (await callServiceApi(target, 'GET', '/admin/instances')).body as Array<{ name?: string }> | undefined;
  const name = listed?.[0]?.name;
  if (!name) throw new CliFailure('The admin API shows this key no instance: pass --instance');
  return name;
}

/** The body, or undefined on 404 (nothing kept); other failures propagate. */
async function found(call: Promise<{ body: unknown }>): Promise<unknown> {
  try {
    return (await call).body;
  } catch (error) {
    if (error instanceof ServiceApiError && error.status === 404) return undefined;
    throw error;
  }
}

const showCommand: Command = {
  name: 'show',
  summary: "Show a device's registration record and the trace of its last outcome.",
  synopsis: '<registration-id> [options]',
  options: TARGET_OPTIONS,
  details: [
    'Prints {registrationState, trace}. The trace says why a device was refused (unknownEnrollment,',
    'wrongKey, enrollmentDisabled, tokenExpired, certificateExpired, untrustedChain, tpmChallengeFailed,',
    'noHub, webhookFailed, throttled, ...) or, for an assignment, the policy, the candidate hubs, the',
    'chosen one and why, and the reprovisioning decision. Traces are kept 7 days, refusals 1 hour.',
  ].join('\n'),
  positionals: { min: 1, max: 1 },
  async run(values, [id = ''], io) {
    const target = resolveTarget(values, io);
    const registrationState = await found(callServiceApi(target, 'GET', registrationPath(id)));
    const instance = await instanceOf(target, stringValue(values, 'instance'));
    const trace = await found(callServiceApi(target, 'GET', tracePath(instance, id)));
    if (registrationState === undefined && trace === undefined) throw new CliFailure(`No registration record or trace for '${id}'`);
    printJson(io, { ...(registrationState !== undefined ? { registrationState } : {}), ...(trace !== undefined ? { trace } : {}) });
    return EXIT_OK;
  },
};

const deleteCommand: Command = {
  name: 'delete',
  summary: "Delete a device's registration record (the service API's registration delete) and its trace.",
  synopsis: '<registration-id> [options]',
  options: TARGET_OPTIONS,
  details: 'The device stays on its hub; its next registration is a first one again.',
  positionals: { min: 1, max: 1 },
  async run(values, [id = ''], io) {
    const target = resolveTarget(values, io);
    const record = await found(callServiceApi(target, 'DELETE', registrationPath(id)).then(() => ({ body: true })));
    const instance = await instanceOf(target, stringValue(values, 'instance'));
    const trace = await found(callServiceApi(target, 'DELETE', tracePath(instance, id)).then(() => ({ body: true })));
    if (record === undefined && trace === undefined) throw new CliFailure(`No registration record or trace for '${id}'`);
    io.out(`deleted the registration ${record ? 'record' : ''}${record && trace ? ' and ' : ''}${trace ? 'trace' : ''} of ${id}`);
    return EXIT_OK;
  },
};

export const registrationGroup: CommandGroup = {
  name: 'registration',
  summary: "Show or delete a device's registration record and its outcome trace.",
  subcommands: [showCommand, deleteCommand],
};
