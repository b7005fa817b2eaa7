import { START_SETTINGS, resolveConfig, settingsFromEnv, type RawSettings } from '../../config';
import { routeLibraryOutput } from '../../library-logs';
import { createLogger } from '../../logger';
import { createServer } from '../../server';
import type { Command, OptionSpecs } from '../command';
import { EXIT_FAILED, EXIT_OK } from '../io';

const options: OptionSpecs = Object.fromEntries(
  START_SETTINGS.map((setting) => [
    setting.flag,
    { type: 'string', value: setting.value, help: `${setting.help} [${setting.env}]` },
  ]),
);

/** `opendps start`: resolve the configuration, run the server until SIGINT or SIGTERM. */
export const startCommand: Command = {
  name: 'start',
  summary: 'Run OpenDPS: the device front-ends, the service API and the built-in hub.',
  synopsis: '[options]',
  options,
  positionals: { min: 0, max: 0 },
  details: [
    'Precedence: flags, then OPENDPS_* variables, then the --config file, then defaults.',
    'Port 0 picks a free port. When every listener is up, <data-dir>/connection.json lists the',
    'endpoints, ID scope, service connection string and CA file, and a line containing "ready" is logged.',
  ].join('\n'),
  async run(values, _positionals, io) {
    const flags: RawSettings = {};
    for (const setting of START_SETTINGS) {
      const value = values[setting.flag];
      if (typeof value === 'string') flags[setting.flag] = value;
    }
    const config = resolveConfig(flags, settingsFromEnv(io.env), io.cwd);

    const logger = createLogger(config.logLevel ? { level: config.logLevel } : {});
    const restoreLibraryOutput = routeLibraryOutput(logger);
    let server;
    try {
      server = await createServer({ ...config, logger });
    } catch (error) {
      const { code, message } = error as NodeJS.ErrnoException;
      restoreLibraryOutput();
      io.err(`opendps: could not start: ${code === 'EADDRINUSE' ? `a port is already in use (${message})` : message}`);
      return EXIT_FAILED;
    }
    const running = server;
    return new Promise<number>((resolve) => {
      const shutdown = (): void => {
        process.off('SIGINT', shutdown);
        process.off('SIGTERM', shutdown);
        running.stop().finally(restoreLibraryOutput).then(
          () => resolve(EXIT_OK),
          (error: Error) => {
            io.err(`opendps: error while stopping: ${error.message}`);
            resolve(EXIT_FAILED);
          },
        );
      };
      process.once('SIGINT', shutdown);
      process.once('SIGTERM', shutdown);
    });
  },
};
