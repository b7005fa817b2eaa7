import { cpuUsage } from 'node:process';
import type { WorkerMessage } from './processes';
import { runLoad, type LoadOptions } from './run';

/** A `--processes` worker: runs the share of the load it is sent, reports progress and the result. */
process.once('message', (message: { options: LoadOptions; progressIntervalMs: number }) => {
  const send = (reply: WorkerMessage) => process.send?.(reply);
  const before = cpuUsage();
  runLoad(message.options, { onProgress: (progress) => send({ type: 'progress', progress }), progressIntervalMs: message.progressIntervalMs }).then(
    (result) => {
      const used = cpuUsage(before);
      send({ type: 'done', result, cpuMs: (used.user + used.system) / 1000 });
    },
    (error: unknown) => send({ type: 'failed', message: (error as Error).message }),
  );
});
