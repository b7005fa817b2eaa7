import { runCommand, runGroup, usageError, type Command, type CommandGroup } from './command';
import { caGroup } from './commands/ca';
import { certGroup } from './commands/cert';
import { enrollmentGroup } from './commands/enrollments';
import { hubGroup } from './commands/hub';
import { instanceGroup } from './commands/instance';
import { keyGroup } from './commands/key';
import { registrationGroup } from './commands/registration';
import { loadgenCommand } from './commands/loadgen';
import { startCommand } from './commands/start';
import { EXIT_OK, processIo, type CliIo } from './io';
import { serverVersion } from './version';

/** The `opendps` command table. */
const ENTRIES: Array<Command | CommandGroup> = [startCommand, enrollmentGroup('individual'), enrollmentGroup('group'), certGroup, caGroup, keyGroup, instanceGroup, hubGroup, registrationGroup, loadgenCommand];

function isGroup(entry: Command | CommandGroup): entry is CommandGroup {
  return 'subcommands' in entry;
}

export function mainHelp(): string {
  const width = Math.max(...ENTRIES.map((entry) => entry.name.length));
  return [
    'Usage: opendps <command> [options]',
    '',
    'OpenDPS: a self-hosted device provisioning service, wire-compatible with Azure IoT Hub DPS.',
    '',
    'Options:',
    '  --version  print the OpenDPS version',
    '',
    'Commands:',
    ...ENTRIES.map((entry) => `  ${entry.name.padEnd(width)}  ${entry.summary}`),
    '',
    "Run 'opendps <command> --help' for a command's options.",
    '',
  ].join('\n');
}

/** Runs one command line; resolves with the exit code. */
export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--help' || name === '-h' || name === 'help') {
    io.out(mainHelp());
    return EXIT_OK;
  }
  if (name === '--version' || name === '-V' || name === 'version') {
    io.out(serverVersion());
    return EXIT_OK;
  }
  if (name === undefined) return usageError(io, 'A command is required', mainHelp());
  const entry = ENTRIES.find((candidate) => candidate.name === name);
  if (!entry) return usageError(io, `Unknown command '${name}'`, mainHelp());
  return isGroup(entry) ? runGroup(`opendps ${name}`, entry, rest, io) : runCommand(`opendps ${name}`, entry, rest, io);
}
