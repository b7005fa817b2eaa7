import { parseArgs } from 'node:util';
import { ConfigError } from '../config';
import { CliFailure, UsageError } from './errors';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, type CliIo } from './io';

/**
 * A small command framework over node's util.parseArgs: every command declares its options with
 * help text, gets `--help`, and turns parse errors into usage + exit 2.
 */
export interface OptionSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  short?: string;
  /** Placeholder in the help (`PORT`, `FILE`). */
  value?: string;
  help: string;
}

export type OptionSpecs = Record<string, OptionSpec>;
export type Values = Record<string, string | boolean | string[] | boolean[] | undefined>;

export interface Command {
  name: string;
  summary: string;
  /** After the command path, e.g. `<registration-id> [options]`. */
  synopsis: string;
  options: OptionSpecs;
  /** How many positional arguments the command takes. */
  positionals: { min: number; max: number };
  /** Extra help text after the options. */
  details?: string;
  run(values: Values, positionals: string[], io: CliIo): Promise<number>;
}

export interface CommandGroup {
  name: string;
  summary: string;
  subcommands: Command[];
}

const HELP: OptionSpec = { type: 'boolean', short: 'h', help: 'show this help' };

export async function runCommand(path: string, command: Command, argv: string[], io: CliIo): Promise<number> {
  let parsed: { values: Values; positionals: string[] };
  try {
    const options = { ...command.options, help: HELP };
    parsed = parseArgs({
      args: argv,
      options: Object.fromEntries(
        Object.entries(options).map(([name, spec]) => [
          name,
          { type: spec.type, ...(spec.multiple ? { multiple: true } : {}), ...(spec.short ? { short: spec.short } : {}) },
        ]),
      ),
      allowPositionals: true,
      strict: true,
    }) as { values: Values; positionals: string[] };
  } catch (error) {
    return usageError(io, (error as Error).message.split('. ')[0] ?? 'Invalid arguments', commandHelp(path, command));
  }
  if (parsed.values.help) {
    io.out(commandHelp(path, command));
    return EXIT_OK;
  }
  const { min, max } = command.positionals;
  if (parsed.positionals.length < min || parsed.positionals.length > max) {
    const what = parsed.positionals.length < min ? 'Missing argument' : `Unexpected argument '${parsed.positionals[max]}'`;
    return usageError(io, what, commandHelp(path, command));
  }
  try {
    return await command.run(parsed.values, parsed.positionals, io);
  } catch (error) {
    if (error instanceof UsageError) return usageError(io, error.message, commandHelp(path, command));
    if (error instanceof ConfigError) {
      io.err(`opendps: ${error.message}`);
      return EXIT_USAGE;
    }
    if (error instanceof CliFailure) {
      io.err(`opendps: ${error.message}`);
      return EXIT_FAILED;
    }
    throw error;
  }
}

export async function runGroup(path: string, group: CommandGroup, argv: string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) return usageError(io, `'${path}' needs a subcommand`, groupHelp(path, group));
  if (name === '--help' || name === '-h' || name === 'help') {
    io.out(groupHelp(path, group));
    return EXIT_OK;
  }
  const command = group.subcommands.find((candidate) => candidate.name === name);
  if (!command) return usageError(io, `Unknown command '${path} ${name}'`, groupHelp(path, group));
  return runCommand(`${path} ${name}`, command, rest, io);
}

export function usageError(io: CliIo, message: string, help: string): number {
  io.err(`opendps: ${message.replace(/\.$/, '')}.\n\n${help}`);
  return EXIT_USAGE;
}

export function commandHelp(path: string, command: Command): string {
  const options = Object.entries({ ...command.options, help: HELP }).map(([name, spec]) => {
    const flag = `${spec.short ? `-${spec.short}, ` : ''}--${name}${spec.type === 'string' ? ` ${spec.value ?? 'VALUE'}` : ''}`;
    return [flag, `${spec.help}${spec.multiple ? ' (repeatable)' : ''}`] as const;
  });
  const width = Math.max(...options.map(([flag]) => flag.length));
  return [
    `Usage: ${path} ${command.synopsis}`.trimEnd(),
    '',
    command.summary,
    '',
    'Options:',
    ...options.map(([flag, help]) => `  ${flag.padEnd(width)}  ${help}`),
    ...(command.details ? ['', command.details] : []),
    '',
  ].join('\n');
}

export function groupHelp(path: string, group: CommandGroup): string {
  const width = Math.max(...group.subcommands.map((command) => command.name.length));
  return [
    `Usage: ${path} <command> [options]`,
    '',
    group.summary,
    '',
    'Commands:',
    ...group.subcommands.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}`),
    '',
    `Run '${path} <command> --help' for a command's options.`,
    '',
  ].join('\n');
}

/** One string option's value (the last, if given twice). */
export function stringValue(values: Values, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

export function stringValues(values: Values, name: string): string[] {
  const value = values[name];
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}
