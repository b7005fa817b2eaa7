import { START_SETTINGS, resolveConfig, settingsFromEnv, type RawSettings } from '../../config';
import { routeLibraryOutput } from '../../library-logs';
import { createLogger } from '../../logger';
import { isClusterWorker, isWorkerMessage, runPrimary, type WorkerMessage } from '../../cluster';
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
    if (config.workers > 1 && !isClusterWorker()) {
      const stopRequested = new Promise<void>((resolve) => {
        // Ctrl-C reaches the workers too (one process group); they drain on it as on the primary's word.
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      try {
        return await runPrimary({ config, logger, stopRequested });
      } catch (error) {
        io.err(`opendps: could not start: ${(error as Error).message}`);
        return EXIT_FAILED;
      }
    }
    const restoreLibraryOutput = routeLibraryOutput(logger);
    let server;
    try {
      server = await createServer({ ...config, logger });
    } catch (error) {
      const { code, message } = error as NodeJS.ErrnoException;
      restoreLibraryOutput();
      io.err(`opendps: could not start: ${code === 'EADDRINUSE' ? `a port is already in use (${message})` : message}`);
      // A worker's IPC channel to its primary would keep it alive.
      if (isClusterWorker()) process.disconnect();
      return EXIT_FAILED;
    }
    const running = server;
    const reload = (): void => void running.reloadTls();
    process.on('SIGHUP', reload);
    if (isClusterWorker()) process.send?.({ opendps: 'ready' } satisfies WorkerMessage);
    return new Promise<number>((resolve) => {
      let begun = false;
      const fromPrimary = (message: unknown): void => {
        if (isWorkerMessage(message, 'drain')) shutdown();
      };
      process.on('message', fromPrimary);
      const shutdown = (): void => {
        if (begun) return;
        begun = true;
        process.off('message', fromPrimary);
        process.off('SIGINT', shutdown);
        process.off('SIGTERM', shutdown);
        process.off('SIGHUP', reload);
        // The drain is bounded; this only ends a drain that overran its bound. Further signals are
        // ignored: under `pnpm start` one Ctrl-C arrives twice (the terminal's and pnpm's own).
        const force = (): void => {
          io.err('opendps: the drain did not finish in time; exiting');
          process.exit(EXIT_FAILED);
        };
        const ignore = (): void => undefined;
        process.on('SIGINT', ignore);
        process.on('SIGTERM', ignore);
        const watchdog = setTimeout(force, running.config.drainTimeoutMs + 1_000);
        watchdog.unref();
        running
          .drain()
          .finally(() => {
            clearTimeout(watchdog);
            restoreLibraryOutput();
          })
          .then(
            () => {
              // Whatever a stuck peer still holds open must not keep the process past its bound.
              setTimeout(() => process.exit(EXIT_OK), 100).unref();
              resolve(EXIT_OK);
            },
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
