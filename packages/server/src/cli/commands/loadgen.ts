import { LOADGEN_DETAILS, LOADGEN_OPTIONS, LoadgenUsageError, loadgenMain } from '@opendps/loadgen';
import type { Command } from '../command';
import { UsageError } from '../errors';

/** `opendps loadgen`: simulated devices registering against any DPS endpoint (packages/loadgen). */
export const loadgenCommand: Command = {
  name: 'loadgen',
  summary: 'Register simulated devices against a DPS endpoint (OpenDPS or Azure); report rates and latency per phase.',
  synopsis: '[--data-dir DIR | --id-scope SCOPE --host HOST] (--group-key KEY | --keys FILE | --ca-cert FILE --ca-key FILE) [options]',
  options: LOADGEN_OPTIONS,
  details: LOADGEN_DETAILS,
  positionals: { min: 0, max: 0 },
  async run(values, _positionals, io) {
    try {
      return await loadgenMain(values, {
        out: (text) => io.out(text),
        err: (text) => io.err(text),
        // A terminal gets one progress line redrawn in place; anything else gets JSON lines.
        ...(process.stderr.isTTY ? { redraw: (text: string) => process.stderr.write(`\r\x1b[2K${text}`) } : {}),
        cwd: io.cwd,
      });
    } catch (error) {
      if (error instanceof LoadgenUsageError) throw new UsageError(error.message);
      throw error;
    }
  },
};
