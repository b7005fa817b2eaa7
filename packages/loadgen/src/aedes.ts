import type { Aedes as AedesBroker, AedesOptions } from 'aedes' with { 'resolution-mode': 'import' };

/**
 * aedes 1.x ships ES modules only. Node 20 loads them through `require`, but jest's CommonJS runtime
 * cannot, so the module is loaded with Node's own `require` (obtained outside any module registry).
 */
export function createAedes(options: AedesOptions): Promise<AedesBroker> {
  const { createRequire } = process.getBuiltinModule('node:module');
  const { Aedes } = createRequire(__filename)('aedes') as { Aedes: typeof AedesBroker };
  return Aedes.createBroker(options);
}

export type { AedesBroker };
