#!/usr/bin/env node
import { main } from './cli/main';
import { EXIT_FAILED } from './cli/io';

/** The `opendps` executable: a thin shell over createServer and the service API. */
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: Error) => {
    process.stderr.write(`opendps: unexpected error: ${error.stack ?? error.message}\n`);
    process.exitCode = EXIT_FAILED;
  },
);
