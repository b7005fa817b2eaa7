// Preloaded into the server by idle.mjs (`node --expose-gc --require`): on SIGUSR2 it collects
// garbage and writes process.memoryUsage() as JSON to the file named by OPENDPS_MEMORY_FILE, so a
// separate process can read the server's heap without a debugger.
const { renameSync, writeFileSync } = require('node:fs');

process.on('SIGUSR2', () => {
  if (typeof globalThis.gc === 'function') {
    globalThis.gc();
    globalThis.gc();
  }
  writeFileSync(`${process.env.OPENDPS_MEMORY_FILE}.tmp`, JSON.stringify(process.memoryUsage()));
  renameSync(`${process.env.OPENDPS_MEMORY_FILE}.tmp`, process.env.OPENDPS_MEMORY_FILE);
});
