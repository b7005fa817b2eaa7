import type * as AedesModule from 'aedes' with { 'resolution-mode': 'import' };

export type { Aedes, AedesOptions, AuthenticateError, Client } from 'aedes' with { 'resolution-mode': 'import' };
export type { PublishPacket, Subscription } from 'aedes' with { 'resolution-mode': 'import' };

/**
 * aedes 1.x ships as ES modules only. Node 20.19+ loads it with `require`, but jest's module
 * registry (CommonJS, no ESM transform) cannot, so the module is loaded through Node's own require,
 * obtained outside jest's sandbox via `process.getBuiltinModule`.
 */
export function loadAedes(): typeof AedesModule {
  const nodeModule = process.getBuiltinModule('node:module') as typeof import('node:module');
  return nodeModule.createRequire(__filename)('aedes') as typeof AedesModule;
}
